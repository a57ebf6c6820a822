// ioredis through Sentinel: `node ioredis-adapter.mjs CONFIG.json` (see lab/clients/__init__.py).
import Redis from "ioredis";
import { loadConfig, recorder, runWorkload, tlsOptions } from "./common.mjs";

const config = loadConfig(process.argv[2]);
const rec = recorder(config);

export const RECOMMENDED = {
  // Subscribe to the Sentinels' +switch-master and reconnect at once: a client of a frozen, then
  // thawed master otherwise keeps writing to it until Sentinel demotes it, and those writes are lost.
  failoverDetector: true,
  // READONLY (the old master demoted under us) or NOREPLICAS (a master cut off from its replicas,
  // replaced, not yet demoted): reconnect through Sentinel, but never resend the command (2 would
  // resend it: some writes would land twice).
  reconnectOnError: (err) => (/^(READONLY|NOREPLICAS)/.test(err.message) ? 1 : false),
  // A hung Sentinel or master must not hold a command for ever.
  sentinelCommandTimeout: 500,
  connectTimeout: 500,
  commandTimeout: 1000,
  // A command that failed with the connection is reported, not silently retried after a reconnect.
  maxRetriesPerRequest: 0,
};

const options = {
  sentinels: config.sentinels.map(([host, port]) => ({ host, port })),
  name: config.master_name,
  username: config.username || undefined,
  password: config.password || undefined,
  sentinelUsername: config.sentinel_username || undefined,
  sentinelPassword: config.sentinel_password || undefined,
  // TLS to the Sentinels and to the nodes they name (the lab's CA, a client certificate).
  ...(config.tls ? { tls: tlsOptions(config), sentinelTLS: tlsOptions(config), enableTLSForSentinelMode: true } : {}),
  lazyConnect: false,
  ...(config.settings === "recommended" ? RECOMMENDED : {}),
};

// ioredis ends a client for good when the failoverDetector left from its last connection hears
// +switch-master while a reconnect is in flight (the pending connect throws "Connection is closed."):
// measured in 1 of 12 kill-master runs (docs/clients.md). The recommended settings treat an `end` the
// application did not ask for as a reason to connect again.
let closing = false;
export function connectAgainOnEnd(client, rec, p) {
  client.on("end", () => {
    if (closing) return;
    setTimeout(() => {
      if (closing || client.status !== "end") return;
      rec.add({ type: "client", process: p, event: "connect-again", detail: "end not asked for" });
      client.connect().catch(() => {}); // a failed attempt ends the client again: the next `end` retries
    }, 100);
  });
}

const clients = Array.from({ length: config.workload.clients }, (_, p) => {
  const client = new Redis(options);
  for (const event of ["connect", "ready", "reconnecting", "end", "+switch-master", "+node", "failover"]) {
    client.on(event, (detail) => rec.add({ type: "client", process: p, event, detail: detail ? String(detail).slice(0, 120) : null }));
  }
  client.on("error", (err) => rec.add({ type: "client", process: p, event: "error", detail: String(err.message).slice(0, 120) }));
  if (config.settings === "recommended") connectAgainOnEnd(client, rec, p);
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
