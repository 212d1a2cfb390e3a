// Draws latency against offered rate from a relay report as a small standalone SVG (no dependencies):
// p50 and p99 per target over the open-loop steps, and each target's saturation point.
//
//   npm run bench:plot -- [--in bench/results/relay.json] [--out bench/latency.svg]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFlags, ROOT } from './lib/common.mjs';

const flags = parseFlags(process.argv.slice(2), { in: join(ROOT, 'bench/results/relay.json'), out: join(ROOT, 'bench/latency.svg') });

/** Renders the SVG text for a relay report. */
export function renderLatencySvg(report) {
  const W = 720;
  const H = 420;
  const m = { left: 70, right: 170, top: 40, bottom: 56 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const steps = report.steps.filter((s) => Number.isFinite(s.p50) && Number.isFinite(s.p99));
  const targets = [...new Set(steps.map((s) => s.target))];
  const xOf = (s) => (s.step === 'saturation' ? s.throughput : s.offered);
  const xMax = Math.max(...steps.map(xOf)) * 1.08;
  const yVals = steps.flatMap((s) => [s.p50, s.p99]).filter((v) => v > 0);
  const yMin = Math.pow(10, Math.floor(Math.log10(Math.min(...yVals))));
  const yMax = Math.pow(10, Math.ceil(Math.log10(Math.max(...yVals))));
  const sx = (x) => m.left + (x / xMax) * pw;
  const sy = (y) => m.top + ph - ((Math.log10(Math.max(y, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * ph;
  const colors = { ours: '#1f6feb', raw: '#8a8f98', cluster2: '#d1242f', cluster1: '#bf8700', nodes1: '#1a7f37', nodes2: '#8250df' };
  const names = { ours: 'SDK + our server', raw: 'raw ws relay', cluster2: 'two nodes, across', cluster1: 'one node on Redis' };
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${m.left}" y="22" font-size="14" font-weight="bold">End-to-end latency vs offered rate (${report.config.pairs} pairs, QoS on)</text>`);
  const xStep = niceStep(xMax / 6);
  for (let x = 0; x <= xMax; x += xStep) {
    out.push(`<line x1="${sx(x)}" y1="${m.top}" x2="${sx(x)}" y2="${m.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${sx(x)}" y="${m.top + ph + 18}" text-anchor="middle">${x}</text>`);
  }
  for (let y = yMin; y <= yMax * 1.001; y *= 10) {
    out.push(`<line x1="${m.left}" y1="${sy(y)}" x2="${m.left + pw}" y2="${sy(y)}" stroke="#eee"/>`);
    out.push(`<text x="${m.left - 8}" y="${sy(y) + 4}" text-anchor="end">${y >= 1 ? y : y.toPrecision(1)}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${H - 14}" text-anchor="middle">offered rate, messages/s (saturation points: achieved rate, closed loop)</text>`);
  out.push(`<text transform="translate(18 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">latency, ms (log scale)</text>`);
  let ly = m.top + 10;
  for (const t of targets) {
    const color = colors[t] ?? '#000';
    const open = steps.filter((s) => s.target === t && s.step !== 'saturation').sort((a, b) => a.offered - b.offered);
    for (const [key, dash] of [['p50', ''], ['p99', '6 4']]) {
      const pts = open.map((s) => `${sx(xOf(s)).toFixed(1)},${sy(s[key]).toFixed(1)}`).join(' ');
      if (pts) out.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2" ${dash ? `stroke-dasharray="${dash}"` : ''}/>`);
      for (const s of open) out.push(`<circle cx="${sx(xOf(s)).toFixed(1)}" cy="${sy(s[key]).toFixed(1)}" r="3" fill="${color}"/>`);
      out.push(`<line x1="${m.left + pw + 14}" y1="${ly}" x2="${m.left + pw + 40}" y2="${ly}" stroke="${color}" stroke-width="2" ${dash ? `stroke-dasharray="${dash}"` : ''}/>`);
      out.push(`<text x="${m.left + pw + 46}" y="${ly + 4}">${names[t] ?? t} ${key}</text>`);
      ly += 18;
    }
    const sat = steps.find((s) => s.target === t && s.step === 'saturation');
    if (sat) {
      for (const key of ['p50', 'p99']) {
        const x = sx(xOf(sat));
        const y = sy(sat[key]);
        out.push(`<path d="M${x - 5},${y - 5} L${x + 5},${y + 5} M${x - 5},${y + 5} L${x + 5},${y - 5}" stroke="${color}" stroke-width="2"/>`);
      }
    }
  }
  out.push(`<path d="M${m.left + pw + 22},${ly - 5} l8,8 m-8,0 l8,-8" stroke="#333" stroke-width="2"/>`);
  out.push(`<text x="${m.left + pw + 46}" y="${ly + 4}">saturation p50/p99</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function niceStep(raw) {
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const k of [1, 2, 2.5, 5, 10]) if (k * p >= raw) return k * p;
  return 10 * p;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const report = JSON.parse(readFileSync(flags.in, 'utf8'));
  writeFileSync(flags.out, renderLatencySvg(report));
  console.log(`wrote ${flags.out}`);
}
