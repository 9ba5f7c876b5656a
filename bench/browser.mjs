// Helper for bench/browser-vs-ssoprobe.sh. Three modes:
//
//   node browser.mjs spki  --ca FILE --route HOST=ADDR[:PORT] ...
//       Prints the base64 SHA-256 of the SubjectPublicKeyInfo of each host's
//       leaf certificate (verified against FILE), comma-separated, for
//       Chromium's --ignore-certificate-errors-spki-list.
//
//   node browser.mjs run   --url URL --expect-path PATH --rules RULES
//                          --spki LIST --profile DIR
//       The baseline: launches headless Chromium (playwright-core,
//       /usr/bin/chromium) with a fresh user-data-dir, opens a page, goes to
//       URL, waits until the redirect chain ends on a loaded page whose path
//       is PATH, closes the browser. Prints one JSON line.
//
//   node browser.mjs watch --fifo FIFO --ready FILE --out FILE [--interval-ms 20]
//       The memory sampler. Writes its own pid to --ready once armed, reads a
//       pid from FIFO, then every interval sums PSS (and RSS) from
//       /proc/<pid>/smaps_rollup over all descendants of that pid (the pid
//       itself excluded: it is /usr/bin/time) until it exits. Writes one JSON
//       line to --out (atomically) with the peaks and the last-seen
//       utime+stime (/proc/<pid>/stat: all threads, 10 ms ticks) summed over
//       every descendant it saw.
//
// Only modules that ship with Node are used, plus playwright-core, loaded from
// $BENCH_DIR/node_modules.

import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';

function parseArgs(argv) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const key = a.slice(2);
      const val = argv[i + 1];
      i++;
      if (key in out) out[key] = [].concat(out[key], val);
      else out[key] = val;
    } else out._.push(a);
  }
  return out;
}

const mode = process.argv[2];
const args = parseArgs(process.argv.slice(3));

// ---------------------------------------------------------------- spki
async function spki() {
  const ca = fs.readFileSync(args.ca);
  const routes = [].concat(args.route ?? []);
  const hashes = new Set();
  for (const r of routes) {
    const [host, target] = r.split('=');
    const m = target.match(/^(.*?)(?::(\d+))?$/);
    const addr = m[1];
    const port = Number(m[2] ?? 443);
    const der = await new Promise((resolve, reject) => {
      const s = tls.connect({ host: addr, port, servername: host, ca }, () => {
        const cert = s.getPeerX509Certificate();
        s.end();
        resolve(cert.publicKey.export({ type: 'spki', format: 'der' }));
      });
      s.on('error', reject);
    });
    hashes.add(crypto.createHash('sha256').update(der).digest('base64'));
  }
  process.stdout.write([...hashes].join(',') + '\n');
}

// ---------------------------------------------------------------- run
async function run() {
  const t0 = performance.now();
  const benchDir = process.env.BENCH_DIR;
  if (!benchDir) throw new Error('BENCH_DIR is not set');
  const require = createRequire(path.join(benchDir, 'noop.js'));
  const { chromium } = require('playwright-core');
  const tImport = performance.now();

  const launchArgs = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--host-resolver-rules=${args.rules}`,
  ];
  const options = { executablePath: '/usr/bin/chromium', headless: true, args: launchArgs };
  if (args.spki === 'all') options.ignoreHTTPSErrors = true;
  else launchArgs.push(`--ignore-certificate-errors-spki-list=${args.spki}`);

  // launchPersistentContext is how playwright takes a --user-data-dir of our
  // own (args may not carry one); the directory is fresh, made by the script.
  const context = await chromium.launchPersistentContext(args.profile, options);
  const tLaunch = performance.now();
  const page = await context.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const response = await page.goto(args.url, { waitUntil: 'load', timeout: 30000 });
  const tGoto = performance.now();
  const final = new URL(page.url());
  const title = await page.title();
  await context.close();
  const tClose = performance.now();

  const hosts = [...new Set(requests.map((u) => new URL(u).host))];
  const ok = final.pathname === args['expect-path'] && response?.status() === 200;
  const result = {
    ok,
    final_url: final.origin + final.pathname,
    status: response?.status() ?? null,
    title,
    redirects: (() => {
      let n = 0;
      for (let r = response?.request().redirectedFrom(); r; r = r.redirectedFrom()) n++;
      return n;
    })(),
    requests: requests.length,
    hosts,
    import_ms: Math.round(tImport - t0),
    launch_ms: Math.round(tLaunch - tImport),
    navigate_ms: Math.round(tGoto - tLaunch),
    close_ms: Math.round(tClose - tGoto),
    driver_ms: Math.round(tClose - t0),
  };
  process.stdout.write(JSON.stringify(result) + '\n');
  if (!ok) process.exitCode = 1;
}

// ---------------------------------------------------------------- watch
const TICK = 100; // USER_HZ on Linux (getconf CLK_TCK)

function readStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    return { state: rest[0], ppid: Number(rest[1]), cpu: Number(rest[11]) + Number(rest[12]) };
  } catch {
    return null;
  }
}

function readRollup(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1');
    const pss = Number(/^Pss:\s+(\d+)/m.exec(s)?.[1] ?? 0);
    const rss = Number(/^Rss:\s+(\d+)/m.exec(s)?.[1] ?? 0);
    return { pss, rss };
  } catch {
    return { pss: 0, rss: 0 };
  }
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function watch() {
  const interval = Number(args['interval-ms'] ?? 20);
  fs.writeFileSync(args.ready + '.tmp', `${process.pid}\n`);
  fs.renameSync(args.ready + '.tmp', args.ready);
  const root = Number(fs.readFileSync(args.fifo, 'latin1').trim());
  if (!(root > 1)) return;
  const cpuSeen = new Map(); // pid -> last utime+stime (ticks)
  const names = new Set();
  let peakPss = 0, peakRss = 0, peakProcs = 0, samples = 0;
  for (;;) {
    const me = readStat(root);
    if (!me || me.state === 'Z') break;
    // One pass over /proc: parent links, then the descendants of root.
    const children = new Map();
    const stats = new Map();
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      const st = readStat(d);
      if (!st) continue;
      stats.set(Number(d), st);
      if (!children.has(st.ppid)) children.set(st.ppid, []);
      children.get(st.ppid).push(Number(d));
    }
    const tree = [];
    const stack = [...(children.get(root) ?? [])];
    while (stack.length) {
      const p = stack.pop();
      tree.push(p);
      stack.push(...(children.get(p) ?? []));
    }
    let pss = 0, rss = 0;
    for (const p of tree) {
      const m = readRollup(p);
      pss += m.pss;
      rss += m.rss;
      cpuSeen.set(p, stats.get(p).cpu);
      try { names.add(fs.readFileSync(`/proc/${p}/comm`, 'latin1').trim()); } catch {}
    }
    samples++;
    peakPss = Math.max(peakPss, pss);
    peakRss = Math.max(peakRss, rss);
    peakProcs = Math.max(peakProcs, tree.length);
    sleep(interval);
  }
  let ticks = 0;
  for (const v of cpuSeen.values()) ticks += v;
  fs.writeFileSync(args.out + '.tmp', JSON.stringify({
    samples,
    peak_pss_kb: peakPss,
    peak_rss_sum_kb: peakRss,
    peak_processes: peakProcs,
    processes_seen: cpuSeen.size,
    tree_cpu_ms_seen: Math.round((ticks * 1000) / TICK),
    names: [...names].sort(),
  }) + '\n');
  fs.renameSync(args.out + '.tmp', args.out);
}

try {
  if (mode === 'spki') await spki();
  else if (mode === 'run') await run();
  else if (mode === 'watch') watch();
  else {
    process.stderr.write('usage: node browser.mjs spki|run|watch ...\n');
    process.exit(2);
  }
} catch (e) {
  process.stderr.write(`browser.mjs ${mode}: ${e?.stack ?? e}\n`);
  process.exit(1);
}
