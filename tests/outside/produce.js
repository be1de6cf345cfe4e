const { Kafka, logLevel } = require('kafkajs');
const fs = require('fs');
const [addr, file] = process.argv.slice(2);
(async () => {
  const kafka = new Kafka({ brokers: addr.split(','), logLevel: logLevel.ERROR });
  const p = kafka.producer();
  await p.connect();
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  for (let i = 0; i < lines.length; i += 500) {
    const msgs = lines.slice(i, i + 500).map(l => {
      const k = l.indexOf('|'); const value = l.slice(k + 1);
      let headers = {};
      try { const j = JSON.parse(value); if (typeof j.id === 'string') headers = { event_id: j.id, event_type: String(j.type) }; } catch (e) {}
      return { key: l.slice(0, k), value, headers };
    });
    await p.send({ topic: 'orders', messages: msgs });
  }
  await p.disconnect();
  console.log('sent', lines.length);
})().catch(e => { console.error(e); process.exit(1); });
