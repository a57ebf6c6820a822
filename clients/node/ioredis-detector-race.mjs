// Reproduces, on demand, how ioredis's failoverDetector ends a client for good (docs/clients.md): when the
// Sentinels announce +switch-master while a reconnect is in flight, the detector left from the last
// connection calls the connector's disconnect(), the pending connect throws "Connection is closed." and the
// client goes to `end`. Here the connection is dropped, and the detector's own call is made the moment the
// reconnect starts (its connect waits on a Sentinel then), so the race is hit every time, not 1 run in 12.
//
// `node ioredis-detector-race.mjs CONFIG.json`: the lab's connection (lab.drill.clients.connection_config),
// plus "connect_again" (the recommended settings' connectAgainOnEnd, or not), "key" and "within_ms".
// Prints one JSON line: whether the client ended, whether it wrote again within within_ms, its events.
import Redis from "ioredis";
import { loadConfig } from "./common.mjs";
import { RECOMMENDED, connectAgainOnEnd, sentinelOptions } from "./ioredis-options.mjs";

const config = loadConfig(process.argv[2]);
const client = new Redis({ ...sentinelOptions(config), ...RECOMMENDED });
const events = [];
for (const event of ["connecting", "ready", "reconnecting", "end"]) client.on(event, () => events.push(event));
client.on("error", () => {}); // (each failed command is counted below; the events say the rest)
let closing = false;
if (config.connect_again) connectAgainOnEnd(client, () => closing, () => events.push("connect-again"));

await client.set(config.key, "before");
events.length = 0;
let raced = false;
client.on("connecting", () => {
  if (raced) return;
  raced = true;
  client.connector.disconnect(); // what FailoverDetector.disconnect() does on +switch-master
});
client.stream.destroy(); // the connection is lost, as when the master dies: ioredis reconnects
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const deadline = Date.now() + config.within_ms;
let wroteAgain = false;
let failed = 0;
while (!wroteAgain && Date.now() < deadline) {
  try {
    wroteAgain = (await client.set(config.key, "after")) === "OK";
  } catch {
    failed += 1;
    await sleep(50);
  }
}
closing = true;
console.log(JSON.stringify({ raced, ended: events.includes("end"), wrote_again: wroteAgain, failed, events }));
client.disconnect();
process.exit(0);
