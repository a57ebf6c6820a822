// Shared by the Node adapters: the config, the clock, the record format (lab/history.py) and the
// matrix's error classes, so that every client's history is checked the same way.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

// The config holds the lab's passwords: it is deleted as soon as it is read, so no way this process
// or lab ends (a kill -9 included) leaves it behind.
export function loadConfig(path) {
  const config = JSON.parse(readFileSync(path, "utf8"));
  rmSync(path, { force: true });
  return config;
}

// Node's TLS options for the lab's CA and client certificate, or undefined (plain text).
export function tlsOptions(config) {
  if (!config.tls) return undefined;
  return { ca: readFileSync(config.tls.ca), cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) };
}

export function recorder(config) {
  const records = [];
  const epoch = Number(config.epoch_ms);
  const now = () => Math.round((performance.timeOrigin + performance.now() - epoch) * 1000) / 1000;
  return {
    now,
    add: (fields) => records.push({ t: now(), ...fields }),
    write: () => {
      records.sort((a, b) => a.t - b.t);
      writeFileSync(config.out, records.map((r) => JSON.stringify(r)).join("\n") + (records.length ? "\n" : ""));
    },
  };
}

// (the matrix's error class, whether the write may have happened)
export function errorClass(err) {
  const message = String((err && err.message) || err);
  const word = message.split(" ", 1)[0].replace(/^ERR\s*/, "");
  if (/^[A-Z]+$/.test(word) && word.length > 2 && !/^(ERR|Error)$/.test(word)) return [word, false];
  if (/ECONNREFUSED/.test(message)) return ["refused", false];
  if (/timed? ?out|ETIMEDOUT|Timeout/i.test(message)) return ["timeout", true];
  if (/closed|ECONNRESET|EPIPE|Socket closed|disconnect/i.test(message)) return ["closed", true];
  if (/offline queue|Stream isn't writeable|enableOfflineQueue|The client is closed/i.test(message)) return ["closed", false];
  return [`other:${message.slice(0, 60)}`, true];
}

// Run `clients` workers, each RPUSHing increasing integers onto its own list until the drill closes
// our stdin (duration_s is only a safety limit).
export async function runWorkload(config, rec, push, served) {
  const work = config.workload;
  const clock = () => performance.timeOrigin + performance.now();
  let deadline = clock() + work.duration_s * 1000;
  let stop;
  const stopped = new Promise((resolve) => (stop = resolve));
  const end = () => {
    deadline = Math.min(deadline, clock());
    stop();
  };
  process.stdin.on("end", end);
  process.stdin.on("error", end);
  process.stdin.resume();
  const safety = setTimeout(end, work.duration_s * 1000);
  process.stdout.write("READY\n");
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const worker = async (process) => {
    const key = `${work.prefix}:${process}`;
    for (let value = 1; clock() < deadline; value++) {
      rec.add({ type: "invoke", process, f: "rpush", key, value });
      try {
        await push(key, value);
        rec.add({ type: "ok", process, f: "rpush", key, value, node: served(process) });
      } catch (err) {
        const [kind, maybe] = errorClass(err);
        rec.add({ type: maybe ? "info" : "fail", process, f: "rpush", key, value, error: kind });
        await sleep(5);
      }
    }
  };
  // A command stuck without a timeout never settles: stop waiting for it 2 s after the stop; its
  // invoke without a completion is indeterminate to the checker.
  const all = Promise.all(Array.from({ length: work.clients }, (_, p) => worker(p)));
  await Promise.race([all, stopped.then(() => sleep(2000))]);
  clearTimeout(safety);
}
