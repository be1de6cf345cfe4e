#!/usr/bin/env python3
"""Outbox helpers for the fault scenarios; an independent model of what
the relay and the projector must produce from an app.db.

outbox.py fill APP FIRST LAST   insert OrderPlaced rows for o-FIRST..o-LAST,
                                then OrderPaid rows for the even ones
outbox.py write APP FIRST STOP  the writer: until the file STOP exists, a
                                transaction every few ms placing o-FIRST,
                                o-FIRST+1 ... and paying each even one a few
                                transactions later; prints the number of
                                rows it committed
outbox.py topic APP TSV         every outbox event on the topic (kcat -f
                                '%p\\t%o\\t%k\\t%s\\n') as stored, keyed by its
                                order, first OrderPlaced before first
                                OrderPaid; prints the number of duplicates
outbox.py order APP TSV         the first copy of each event on the topic
                                stands in commit (seq) order within its
                                partition, except a row of an order that
                                failed and was retried (attempts > 0: it may
                                fall behind other orders, never its own);
                                prints the number of such rows
outbox.py model APP RM          the read model equals the model computed
                                from the outbox's envelopes
"""
import json, os, sqlite3, sys, time


def placed(i):
    return ('0190b5b2-0000-7000-8000-%012d' % i, 'OrderPlaced', i,
            '2026-11-2%dT10:15:30.123Z' % (i % 5), 'total')


def paid(i):
    return ('0190b5b2-0001-7000-8000-%012d' % i, 'OrderPaid', i,
            '2026-11-2%dT11:00:00.000Z' % (i % 7), 'amount')


def insert(db, rows):
    """Outbox rows as the writer stores them: the row, then its envelope."""
    for eid, typ, i, at, field in rows:
        oid = 'o-%d' % i
        seq = db.execute('INSERT INTO outbox_messages (id, type, aggregate_id,'
                         ' occurred_at) VALUES (?, ?, ?, ?)',
                         (eid, typ, oid, at)).lastrowid
        env = json.dumps({'id': eid, 'type': typ, 'aggregateId': oid,
                          'occurredAt': at,
                          'payload': {'orderId': oid, field: 100 + i % 1000}},
                         separators=(',', ':'))
        db.execute('INSERT INTO outbox_payloads (seq, payload) VALUES (?, ?)',
                   (seq, env))


def fill(app, first, last):
    db = sqlite3.connect(app, timeout=30, isolation_level=None)
    db.execute('BEGIN IMMEDIATE')
    insert(db, [placed(i) for i in range(first, last + 1)] +
           [paid(i) for i in range(first, last + 1) if i % 2 == 0])
    db.execute('COMMIT')


def write(app, first, stop):
    """Keep work coming: each transaction places the next order and pays
    the even order placed three transactions before, so an OrderPaid often
    lands in a later relay batch than its OrderPlaced."""
    db = sqlite3.connect(app, timeout=30, isolation_level=None)
    i, n = first, 0
    while not os.path.exists(stop):
        rows = [placed(i)]
        if i - 3 >= first and (i - 3) % 2 == 0:
            rows.append(paid(i - 3))
        db.execute('BEGIN IMMEDIATE')
        insert(db, rows)
        db.execute('COMMIT')
        n += len(rows)
        i += 1
        time.sleep(0.003)
    print(n)


def topic(app, tsv):
    db = sqlite3.connect(app)
    want = {r[0]: r[1] for r in db.execute(
        'SELECT id, payload FROM outbox_messages JOIN outbox_payloads '
        'USING (seq)')}
    first, n = {}, 0
    for line in open(tsv):
        p, o, key, value = line.rstrip('\n').split('\t', 3)
        ev = json.loads(value)
        assert value == want.get(ev['id']), 'not an outbox row: %s' % value
        assert key == ev['aggregateId'], (key, ev['id'])
        first.setdefault(ev['id'], (int(p), int(o), key, ev['type']))
        n += 1
    missing = set(want) - set(first)
    assert not missing, '%d events not on the topic, e.g. %s' % (
        len(missing), sorted(missing)[:3])
    placed = {k: (p, o) for p, o, k, t in first.values()
              if t == 'OrderPlaced'}
    for p, o, k, t in first.values():
        if t == 'OrderPaid':
            assert k in placed and placed[k][0] == p and placed[k][1] < o, \
                'OrderPaid of %s before its OrderPlaced' % k
    print(n - len(want))


def order(app, tsv):
    db = sqlite3.connect(app)
    rows = {r[0]: r[1:] for r in db.execute(
        'SELECT id, seq, attempts, aggregate_id FROM outbox_messages')}
    msgs = [l.rstrip('\n').split('\t', 3) for l in open(tsv)]
    msgs.sort(key=lambda m: (int(m[0]), int(m[1])))
    seen, top, per_order, late, failed_order = set(), {}, {}, 0, {}
    for p, o, key, value in msgs:
        eid = json.loads(value)['id']
        if eid in seen:
            continue
        seen.add(eid)
        seq, attempts, order_id = rows[eid]
        failed_order[order_id] = failed_order.get(order_id) or attempts > 0
        last = per_order.get(order_id)
        assert last is None or (last[0] == p and last[1] < seq), \
            'order %s: seq %d at %s:%s after its seq %s' % (
                order_id, seq, p, o, last)
        per_order[order_id] = (p, seq)
        if seq < top.get(p, 0):
            assert failed_order[order_id], 'partition %s offset %s: seq %d ' \
                'after seq %d (no row of its order failed)' % (p, o, seq, top[p])
            late += 1
        top[p] = max(top.get(p, 0), seq)
    print(late)


def model(app, rmpath):
    app = sqlite3.connect(app)
    rm = sqlite3.connect(rmpath, timeout=10)
    rows, days, tot = {}, {}, [0, 0, 0, 0]
    for (payload,) in app.execute('SELECT payload FROM outbox_payloads'):
        ev = json.loads(payload)
        r = rows.setdefault(ev['aggregateId'],
                            ['ORDERED', None, None, None, None])
        d = days.setdefault(ev['occurredAt'][:10], [0, 0, 0, 0])
        if ev['type'] == 'OrderPlaced':
            r[1], r[3] = ev['payload']['total'], ev['occurredAt']
            tot[0] += 1; tot[2] += r[1]; d[0] += 1; d[2] += r[1]
        else:
            r[0], r[2], r[4] = 'PAID', ev['payload']['amount'], ev['occurredAt']
            tot[1] += 1; tot[3] += r[2]; d[1] += 1; d[3] += r[2]
    got = {r[0]: list(r[1:]) for r in rm.execute(
        'SELECT order_id, status, total, paid_amount, placed_at, paid_at '
        'FROM order_list')}
    if got != rows:
        bad = sorted(k for k in set(got) | set(rows) if got.get(k) != rows.get(k))
        sys.exit('order_list differs in %d orders, e.g. %s: %s, want %s' % (
            len(bad), bad[0], got.get(bad[0]), rows.get(bad[0])))
    t = list(rm.execute('SELECT * FROM order_totals').fetchone())
    assert t == tot, 'order_totals %s, want %s' % (t, tot)
    gd = {r[0]: list(r[1:]) for r in rm.execute('SELECT * FROM daily_totals')}
    assert gd == days, 'daily_totals %s, want %s' % (gd, days)
    n, nd = rm.execute('SELECT count(*), count(DISTINCT event_id) '
                       'FROM processed_events').fetchone()
    want = app.execute('SELECT count(*) FROM outbox_messages').fetchone()[0]
    assert n == nd == want, 'processed_events %d (%d distinct), want %d' % (
        n, nd, want)
    dl = rm.execute('SELECT count(*) FROM dead_letters').fetchone()[0]
    assert dl == 0, '%d dead letters' % dl


if __name__ == '__main__':
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == 'fill':
        fill(args[0], int(args[1]), int(args[2]))
    elif cmd == 'write':
        write(args[0], int(args[1]), args[2])
    elif cmd == 'topic':
        topic(*args)
    elif cmd == 'order':
        order(*args)
    elif cmd == 'model':
        model(*args)
    else:
        sys.exit(__doc__)
