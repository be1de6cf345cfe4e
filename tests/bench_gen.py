#!/usr/bin/env python3
"""Writes N events for `make bench` as "key|value" lines on stdout.

usage: bench_gen.py N v7|v4 [RATE]
v7: time-ordered ids (UUIDv7 layout), v4: random ids. Half the orders are
paid, so N events are about 2N/3 orders. With RATE, lines are written (and
flushed) at RATE per second, for latency measurements.
"""
import os, sys, time

n, kind = int(sys.argv[1]), sys.argv[2]
rate = float(sys.argv[3]) if len(sys.argv) > 3 else 0
if rate:
    time.sleep(2)  # let the producer reading us connect first
start = time.time()
out = sys.stdout
ms = int(time.time() * 1000)
seq = 0


def uid():
    global seq
    if kind == 'v4':
        b = bytearray(os.urandom(16))
        b[6] = (b[6] & 0x0f) | 0x40
    else:
        seq += 1
        b = bytearray((ms + seq // 1000).to_bytes(6, 'big') + os.urandom(10))
        b[6] = (b[6] & 0x0f) | 0x70
        b[8] = (b[8] & 0x3f) | 0x80
    h = b.hex()
    return '%s-%s-%s-%s-%s' % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


lines = []
i = 0
order = 0
while i < n:
    oid = 'o-%d' % order
    day = 1 + order % 28
    total = 100 + order % 10000
    lines.append('%s|{"id":"%s","type":"OrderPlaced","aggregateId":"%s",'
                 '"occurredAt":"2026-11-%02dT10:15:30.123Z","payload":'
                 '{"orderId":"%s","total":%d}}' % (oid, uid(), oid, day, oid,
                                                   total))
    i += 1
    if order % 2 == 0 and i < n:
        lines.append('%s|{"id":"%s","type":"OrderPaid","aggregateId":"%s",'
                     '"occurredAt":"2026-11-%02dT11:00:00Z","payload":'
                     '{"orderId":"%s","amount":%d}}' % (oid, uid(), oid, day,
                                                        oid, total))
        i += 1
    order += 1
    if rate:
        out.write('\n'.join(lines) + '\n')
        out.flush()
        lines = []
        ahead = start + i / rate - time.time()
        if ahead > 0:
            time.sleep(ahead)
    if len(lines) >= 10000:
        out.write('\n'.join(lines) + '\n')
        lines = []
if lines:
    out.write('\n'.join(lines) + '\n')
