// ioredis through Sentinel: `node ioredis-adapter.mjs CONFIG.json` (see lab/clients/__init__.py).
import Redis from "ioredis";
import { loadConfig, recorder, runWorkload } from "./common.mjs";
import { RECOMMENDED, connectAgainOnEnd, sentinelOptions } from "./ioredis-options.mjs";

const config = loadConfig(process.argv[2]);
const rec = recorder(config);

const options = {
  ...sentinelOptions(config),
  lazyConnect: false,
  ...(config.settings === "recommended" ? RECOMMENDED : {}),
};

let closing = false; // (the workload is over: this process disconnects its clients)
const clients = Array.from({ length: config.workload.clients }, (_, p) => {
  const client = new Redis(options);
  for (const event of ["connect", "ready", "reconnecting", "end", "+switch-master", "+node", "failover"]) {
    client.on(event, (detail) => rec.add({ type: "client", process: p, event, detail: detail ? String(detail).slice(0, 120) : null }));
  }
  client.on("error", (err) => rec.add({ type: "client", process: p, event: "error", detail: String(err.message).slice(0, 120) }));
  if (config.settings === "recommended") {
    const said = () => rec.add({ type: "client", process: p, event: "connect-again", detail: "end not asked for" });
    connectAgainOnEnd(client, () => closing, said);
  }
  return client;
});
// Connected before READY: the drill's faults are timed from it.
await Promise.all(clients.map((client) => client.ping().catch((err) => rec.add({ type: "client", process: null, event: "error", detail: String(err.message) }))));
const served = (p) => {
  const stream = clients[p].stream;
  return stream && stream.remoteAddress ? `${stream.remoteAddress}:${stream.remotePort}` : null;
};
await runWorkload(config, rec, (key, value) => clients[Number(key.split(":").pop())].rpush(key, value), served);
closing = true;
rec.write();
for (const client of clients) client.disconnect();
process.exit(0);
