// node-redis through Sentinel (createSentinel): `node node-redis-adapter.mjs CONFIG.json`.
import { createSentinel } from "redis";
import { loadConfig, recorder, runWorkload, tlsOptions } from "./common.mjs";

const config = loadConfig(process.argv[2]);
const rec = recorder(config);

export const RECOMMENDED_SOCKET = {
  // A hung master or Sentinel must not hold a connection attempt or a command for ever.
  connectTimeout: 500,
  socketTimeout: 2000,
};

const recommended = config.settings === "recommended";
// TLS to the Sentinels and the nodes (the lab's CA, a client certificate), on top of the socket options.
const tls = config.tls ? { tls: true, ...tlsOptions(config) } : {};
const socket = { ...(recommended ? RECOMMENDED_SOCKET : {}), ...tls };
const node = (extra) => ({
  username: config.username || undefined,
  password: config.password || undefined,
  ...(Object.keys(socket).length ? { socket } : {}),
  ...extra,
});

const clients = await Promise.all(
  Array.from({ length: config.workload.clients }, async (_, p) => {
    const sentinel = createSentinel({
      name: config.master_name,
      sentinelRootNodes: config.sentinels.map(([host, port]) => ({ host, port })),
      nodeClientOptions: node({}),
      sentinelClientOptions: {
        username: config.sentinel_username || undefined,
        password: config.sentinel_password || undefined,
        ...(Object.keys(socket).length ? { socket } : {}),
      },
      // No scanInterval (it defaults to 0, off): every command waits for a scan in flight
      // (RedisSentinel.execute awaits it), so with a hung Sentinel a periodic scan stalls writes to
      // a healthy master until the Sentinel's socket times out, over and over (measured: lab clients).
    });
    for (const event of ["connect", "ready", "reconnecting", "end"]) {
      sentinel.on(event, () => rec.add({ type: "client", process: p, event, detail: null }));
    }
    sentinel.on("topology-change", (e) => rec.add({ type: "client", process: p, event: "topology-change", detail: `${e.type}` }));
    sentinel.on("error", (err) => rec.add({ type: "client", process: p, event: "error", detail: String(err.message || err).slice(0, 120) }));
    try {
      await sentinel.connect();
    } catch (err) {
      rec.add({ type: "client", process: p, event: "error", detail: String(err.message || err).slice(0, 120) });
    }
    return sentinel;
  }),
);
await runWorkload(config, rec, (key, value) => clients[Number(key.split(":").pop())].rPush(key, String(value)), () => null);
rec.write();
for (const client of clients) client.destroy?.();
process.exit(0);
