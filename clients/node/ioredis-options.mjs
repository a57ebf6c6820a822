// ioredis's options for the lab (shared by the matrix's adapter and the race reproducer): how it reaches the
// lab through Sentinel, and the recommended settings (docs/clients.md).
import { tlsOptions } from "./common.mjs";

// Through the lab's Sentinels to its master, as its application user; TLS to the Sentinels and to the nodes
// they name when the lab runs it (the lab's CA, a client certificate).
export function sentinelOptions(config) {
  return {
    sentinels: config.sentinels.map(([host, port]) => ({ host, port })),
    name: config.master_name,
    username: config.username || undefined,
    password: config.password || undefined,
    sentinelUsername: config.sentinel_username || undefined,
    sentinelPassword: config.sentinel_password || undefined,
    ...(config.tls ? { tls: tlsOptions(config), sentinelTLS: tlsOptions(config), enableTLSForSentinelMode: true } : {}),
  };
}

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

// ioredis ends a client for good when the failoverDetector left from its last connection hears
// +switch-master while a reconnect is in flight (the pending connect throws "Connection is closed."):
// 1 of 12 kill-master runs (docs/clients.md; ioredis-detector-race.mjs reproduces it on demand). An `end`
// the application did not ask for (``closing()`` false) is a reason to connect again: 100 ms later, and
// again after each failed try (a failed connect ends the client again).
export function connectAgainOnEnd(client, closing, said = () => {}) {
  client.on("end", () => {
    if (closing()) return;
    setTimeout(() => {
      if (closing() || client.status !== "end") return;
      said();
      client.connect().catch(() => {});
    }, 100);
  });
}
