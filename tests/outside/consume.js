const { Kafka, logLevel } = require('kafkajs');
const [addr, n] = process.argv.slice(2);
(async () => {
  const kafka = new Kafka({ brokers: [addr], logLevel: logLevel.ERROR });
  const c = kafka.consumer({ groupId: 'kjs-check' });
  await c.connect();
  await c.subscribe({ topic: 'orders', fromBeginning: true });
  const seen = {}; let count = 0, bad = 0; const placed = {};
  await new Promise((resolve) => {
    c.run({ eachMessage: async ({ partition, message }) => {
      const ev = JSON.parse(message.value.toString());
      const h = Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k, v.toString()]));
      if (message.key.toString() !== ev.aggregateId || h.event_id !== ev.id || h.event_type !== ev.type) bad++;
      if (ev.type === 'OrderPlaced') placed[ev.aggregateId] = 1; else if (!placed[ev.aggregateId]) bad++;
      seen[ev.id] = (seen[ev.id] || 0) + 1; count++;
      if (count >= +n) resolve();
    }});
  });
  console.log(JSON.stringify({ count, distinct: Object.keys(seen).length, bad }));
  await c.disconnect();
})().catch(e => { console.error(e); process.exit(1); });
