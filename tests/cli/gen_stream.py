#!/usr/bin/env python3
"""Writes a test stream for tests/cli/project.sh and its expected read model.

usage: gen_stream.py ORDERS SEED OUTDIR    writes the stream and expectation
       gen_stream.py check DB OUTDIR         compares a read model with it
OUTDIR/stream.txt     one message per line, "key|value" (kcat -K '|')
OUTDIR/expected.txt   the expected dump of the read model (see dump())
The model here is independent of the C code: it computes the read model
from the event set, then lists what the rejected messages must produce.
"""
import json, random, sys, datetime, sqlite3


def v(x):
    return '' if x is None else str(x)


def dump(db):
    """The read model as text in expected.txt's format; dead letters as
    their reasons (matched against the expected prefixes by check())."""
    c = sqlite3.connect('file:%s?mode=ro' % db, uri=True)
    out = ['order_list']
    for r in c.execute('SELECT order_id, status, total, paid_amount, '
                       'placed_at, paid_at FROM order_list ORDER BY order_id'):
        out.append('|'.join(map(v, r)))
    out.append('order_totals')
    for r in c.execute('SELECT * FROM order_totals'):
        out.append('|'.join(map(v, r)))
    out.append('daily_totals')
    for r in c.execute('SELECT day, orders_placed, orders_paid, '
                       'placed_amount, paid_amount FROM daily_totals '
                       'ORDER BY day'):
        out.append('|'.join(map(v, r)))
    out.append('processed_events')
    out.append(str(c.execute('SELECT count(*) FROM processed_events')
                   .fetchone()[0]))
    out.append('dead_letters')
    reasons = [r[0] for r in c.execute('SELECT reason FROM dead_letters')]
    return out, reasons


def check(db, outdir):
    want = open(outdir + '/expected.txt').read().split('\n')[:-1]
    cut = want.index('dead_letters') + 1
    want, prefixes = want[:cut], want[cut:]
    got, reasons = dump(db)
    ok = True
    if got != want:
        import difflib
        sys.stderr.writelines(l + '\n' for l in difflib.unified_diff(
            want, got, 'expected', 'actual', lineterm='', n=1))
        ok = False
    left = list(reasons)
    for p in sorted(prefixes, key=len, reverse=True):
        hit = next((r for r in left if r.startswith(p)), None)
        if hit is None:
            sys.stderr.write('no dead letter with reason %r\n' % p)
            ok = False
        else:
            left.remove(hit)
    for r in left:
        sys.stderr.write('unexpected dead letter: %r\n' % r)
        ok = False
    return ok


if sys.argv[1] == 'check':
    sys.exit(0 if check(sys.argv[2], sys.argv[3]) else 1)

orders, seed, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rnd = random.Random(seed)
msgs, valid = [], []          # (key, value-text); valid: event dicts
dead_reasons = []             # reason prefixes of rejected messages

def iso(dt, off_min):
    local = dt + datetime.timedelta(minutes=off_min)
    sign = '+' if off_min >= 0 else '-'
    o = abs(off_min)
    suffix = 'Z' if off_min == 0 else '%s%02d:%02d' % (sign, o // 60, o % 60)
    return local.strftime('%Y-%m-%dT%H:%M:%S') + '.%03d' % (dt.microsecond // 1000) + suffix

def render(ev):
    items = list(ev.items())
    rnd.shuffle(items)
    body = dict(items)
    if rnd.random() < 0.3:
        body['extra'] = {'nested': [1, 2, {'x': None}]}
    sep = (', ', ': ') if rnd.random() < 0.5 else (',', ':')
    return json.dumps(body, separators=sep)

base = datetime.datetime(2026, 11, 25, 0, 0, 0)
for i in range(orders):
    oid = 'o-%d' % i
    t_place = base + datetime.timedelta(seconds=rnd.randrange(0, 4 * 86400), milliseconds=rnd.randrange(1000))
    t_pay = t_place + datetime.timedelta(seconds=rnd.randrange(0, 86400))
    total = rnd.choice([rnd.randrange(0, 100000), rnd.randrange(0, 2**40)])
    evs = [{'id': 'p-%d' % i, 'type': 'OrderPlaced', 'aggregateId': oid,
            'occurredAt': iso(t_place, rnd.choice([0, 540, -330, 60])),
            'payload': {'orderId': oid, 'total': total}, '_t': t_place}]
    if rnd.random() < 0.67:
        evs.append({'id': 'q-%d' % i, 'type': 'OrderPaid', 'aggregateId': oid,
                    'occurredAt': iso(t_pay, rnd.choice([0, -480])),
                    'payload': {'orderId': oid, 'amount': total}, '_t': t_pay})
        if rnd.random() < 0.15:
            evs.reverse()           # paid before placed
    for ev in evs:
        t = ev.pop('_t')
        valid.append((ev, t))
        msgs.append((oid, render(ev)))
        if rnd.random() < 0.10:     # a redelivery at a new offset
            msgs.append((oid, render(ev)))
    if rnd.random() < 0.01:
        msgs.append((oid, render({'id': 's-%d' % i, 'type': 'OrderShipped'})))
        valid.append(({'id': 's-%d' % i, 'type': 'OrderShipped'}, None))

# Rule breakers, after the originals of their order (same key: same
# partition, later offset: the first in log order wins).
bad = [
    ('x', 'not json', 'invalid JSON'),
    ('x', '[1,2]', 'not a JSON object'),
    ('x', '{"type":"OrderPlaced"}', 'invalid id'),
    ('x', '{"id":"b1"}', 'invalid type'),
    ('x', '{"id":"b2","type":7}', 'invalid type'),
    ('x', '{"id":"b3","type":"OrderPlaced","aggregateId":"o-x","occurredAt":"2026-02-30T10:00:00Z","payload":{"orderId":"o-x","total":1}}', 'invalid occurredAt'),
    ('x', '{"id":"b4","type":"OrderPlaced","aggregateId":"o-x","occurredAt":"2026-11-27 10:00:00Z","payload":{"orderId":"o-x","total":1}}', 'invalid occurredAt'),
    ('x', '{"id":"b5","type":"OrderPlaced","aggregateId":"o-x","occurredAt":"2026-11-27T10:00:60Z","payload":{"orderId":"o-x","total":1}}', 'invalid occurredAt'),
    ('x', '{"id":"b6","type":"OrderPlaced","aggregateId":"o-x","occurredAt":"2026-11-27T10:00:00","payload":{"orderId":"o-x","total":1}}', 'invalid occurredAt'),
    ('x', '{"id":"b7","type":"OrderPlaced","aggregateId":"o-x","occurredAt":"2026-11-27T10:00:00Z","payload":{"orderId":"o-x","total":-1}}', 'invalid payload.total'),
    ('x', '{"id":"b8","type":"OrderPlaced","aggregateId":"o-x","occurredAt":"2026-11-27T10:00:00Z","payload":{"orderId":"o-x","total":12.5}}', 'invalid payload.total'),
    ('x', '{"id":"b9","type":"OrderPlaced","aggregateId":"o-x","occurredAt":"2026-11-27T10:00:00Z","payload":{"orderId":"o-x","total":"5"}}', 'invalid payload.total'),
    ('x', '{"id":"b10","type":"OrderPlaced","aggregateId":"o-x","occurredAt":"2026-11-27T10:00:00Z","payload":{"orderId":"o-x","total":9007199254740992}}', 'invalid payload.total'),
    ('x', '{"id":"b11","type":"OrderPaid","aggregateId":"o-x","occurredAt":"2026-11-27T10:00:00Z","payload":{"orderId":"o-y","amount":1}}', 'aggregateId does not match'),
    ('x', '{"id":"b12","type":"OrderPaid","aggregateId":"o-x","occurredAt":"2026-11-27T10:00:00Z"}', 'invalid payload'),
    ('x', '{"id":"' + 'i' * 129 + '","type":"OrderShipped"}', 'invalid id'),
    ('x', '{"id":"b13\\u0000x","type":"OrderShipped"}', 'invalid id'),
]
for key, value, reason in bad:
    msgs.append((key, value))
    dead_reasons.append(reason)
first = valid[0][0]
if first['type'] != 'OrderShipped':
    oid = first['aggregateId']
    dup = dict(first, id=first['id'] + '-dup')
    msgs.append((oid, render(dup)))
    dead_reasons.append('duplicate %s for order: %s' % (first['type'], oid))
    conflict = json.loads(json.dumps(first))
    key = 'total' if first['type'] == 'OrderPlaced' else 'amount'
    conflict['payload'][key] += 1
    msgs.append((oid, render(conflict)))
    dead_reasons.append('conflict')

with open(out + '/stream.txt', 'w') as f:
    for key, value in msgs:
        assert '\n' not in value and '|' not in key
        f.write('%s|%s\n' % (key, value))

def utc(ev):
    s = ev['occurredAt']
    dt = datetime.datetime.fromisoformat(s.replace('Z', '+00:00'))
    dt = dt.astimezone(datetime.timezone.utc)
    return dt.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (dt.microsecond // 1000)

rows, days = {}, {}
tot = [0, 0, 0, 0]
for ev, _ in valid:
    if ev['type'] not in ('OrderPlaced', 'OrderPaid'):
        continue
    oid, at = ev['aggregateId'], utc(ev)
    r = rows.setdefault(oid, {'status': 'ORDERED', 'total': None, 'paid': None,
                              'placed_at': None, 'paid_at': None})
    d = days.setdefault(at[:10], [0, 0, 0, 0])
    if ev['type'] == 'OrderPlaced':
        r['total'], r['placed_at'] = ev['payload']['total'], at
        tot[0] += 1; tot[2] += r['total']; d[0] += 1; d[2] += r['total']
    else:
        r['status'], r['paid'], r['paid_at'] = 'PAID', ev['payload']['amount'], at
        tot[1] += 1; tot[3] += r['paid']; d[1] += 1; d[3] += r['paid']

with open(out + '/expected.txt', 'w') as f:
    f.write('order_list\n')
    for oid in sorted(rows):
        r = rows[oid]
        f.write('|'.join([oid, r['status'], v(r['total']), v(r['paid']),
                          v(r['placed_at']), v(r['paid_at'])]) + '\n')
    f.write('order_totals\n%s\n' % '|'.join(map(str, tot)))
    f.write('daily_totals\n')
    for day in sorted(days):
        f.write('%s|%s\n' % (day, '|'.join(map(str, days[day]))))
    f.write('processed_events\n%d\n' % len(valid))
    f.write('dead_letters\n')
    for reason in sorted(dead_reasons):
        f.write(reason + '\n')
