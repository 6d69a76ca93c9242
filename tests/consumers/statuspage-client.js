// A third-party Statuspage client, npm `statuspage.io` (installed by .ci/run), reading Vakt's
// /api/v2 documents. Every call the client makes must succeed, and every answer must hold the
// fields the client's own TypeScript declarations (dist/interfaces/Result.d.ts, read here)
// promise, with their types and enum values. Prints one line per call; exits 1 on the first
// document that breaks the client's contract.
//
// usage: node statuspage-client.js BASE_URL   (NODE_PATH: where statuspage.io is installed)
'use strict';

const fs = require('fs');
const path = require('path');
const { Statuspage } = require('statuspage.io');

const base = process.argv[2];
if (!base) {
  console.error('usage: node statuspage-client.js BASE_URL');
  process.exit(2);
}

// ---- The client's declarations, parsed: interfaces, `type X = A & {...}` and enums. ----
const declarations = fs.readFileSync(
  path.join(path.dirname(require.resolve('statuspage.io')), 'interfaces', 'Result.d.ts'),
  'utf8',
);

/** The text of the `{...}` block starting at `open` (its index), without the braces. */
function block(text, open) {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth++;
    if (text[i] === '}' && --depth === 0) return text.slice(open + 1, i);
  }
  throw new Error('unbalanced braces in Result.d.ts');
}

/** Fields of a `{ name: type; ... }` body: name -> type text (nested blocks kept whole). */
function fields(body) {
  const out = {};
  let i = 0;
  while (i < body.length) {
    const m = /\s*([A-Za-z_]+)\??:\s*/y;
    m.lastIndex = i;
    const found = m.exec(body);
    if (!found) break;
    let j = m.lastIndex;
    let type;
    if (body[j] === '{') {
      const inner = block(body, j);
      type = { object: fields(inner) };
      j += inner.length + 2;
    } else {
      const end = body.indexOf(';', j);
      type = body.slice(j, end).trim();
      j = end;
    }
    out[found[1]] = type;
    i = body.indexOf(';', j) + 1 || body.length;
  }
  return out;
}

const enums = {};
for (const m of declarations.matchAll(/export declare enum (\w+) \{([^}]*)\}/g)) {
  enums[m[1]] = [...m[2].matchAll(/"([^"]+)"/g)].map((v) => v[1]);
}
const types = {};
for (const m of declarations.matchAll(/export interface (\w+)(?: extends ([\w, ]+))? \{/g)) {
  const own = fields(block(declarations, m.index + m[0].length - 1));
  types[m[1]] = { parents: m[2] ? m[2].split(',').map((s) => s.trim()) : [], own };
}
// `type X = A & Omit<B, 'k'> & { ... };`
for (const m of declarations.matchAll(/export type (\w+) = ([^{;]*?)\s*(& \{|;)/g)) {
  const parts = m[2].split(/\s*&\s*(?![^<]*>)/).map((s) => s.trim()).filter(Boolean);
  const own = m[3] === '& {' ? fields(block(declarations, m.index + m[0].length - 1)) : {};
  types[m[1]] = { parents: parts, own };
}

/** Every field of a declared type (a name or `Omit<Name, 'a' | 'b'>`), its parents' included. */
function allFields(name) {
  const omit = /^Omit<(\w+),\s*([^>]+)>$/.exec(name);
  if (omit) {
    const out = allFields(omit[1]);
    for (const k of omit[2].matchAll(/'(\w+)'/g)) delete out[k[1]];
    return out;
  }
  const t = types[name];
  if (!t) throw new Error(`Result.d.ts declares no ${name}`);
  return Object.assign({}, ...t.parents.map(allFields), t.own);
}

// Statuspage itself writes maintenance updates with maintenance states and the impact
// "maintenance"; the client declares a maintenance as an incident with only its own status
// changed. These two places take the maintenance values too, and are the only exceptions.
const widened = {
  ScheduledMaintenance: { impact: ['maintenance'], 'incident_updates.status': enums.MaintenanceStatus },
};

function check(value, type, at, context) {
  if (typeof type === 'object') {
    if (value === null || typeof value !== 'object') throw new Error(`${at}: not an object`);
    for (const [k, t] of Object.entries(type.object)) check(value[k], t, `${at}.${k}`, context);
    return;
  }
  const alternatives = type.split('|').map((s) => s.trim());
  if (alternatives.includes('null') && value === null) return;
  const t = alternatives.find((a) => a !== 'null');
  if (t.endsWith('[]')) {
    if (!Array.isArray(value)) throw new Error(`${at}: not an array`);
    value.forEach((v, n) => check(v, t.slice(0, -2), `${at}[${n}]`, t.slice(0, -2) === 'ScheduledMaintenance' ? 'ScheduledMaintenance' : context));
    return;
  }
  if (['string', 'number', 'boolean'].includes(t)) {
    if (typeof value !== t) throw new Error(`${at}: ${JSON.stringify(value)} is not a ${t}`);
    return;
  }
  if (enums[t]) {
    const key = at.replace(/\[\d+\]/g, '').split('.').slice(-2).join('.');
    const extra = (widened[context] || {})[key] || (widened[context] || {})[at.split('.').pop()] || [];
    if (!enums[t].includes(value) && !extra.includes(value)) {
      throw new Error(`${at}: ${JSON.stringify(value)} is not one of ${t} (${enums[t].join(', ')})`);
    }
    return;
  }
  if (types[t]) {
    if (value === null || typeof value !== 'object') throw new Error(`${at}: not a ${t}`);
    for (const [k, ft] of Object.entries(allFields(t))) {
      if (!(k in value)) throw new Error(`${at}: ${t} lacks ${k}`);
      check(value[k], ft, `${at}.${k}`, t === 'ScheduledMaintenance' ? t : context);
    }
    return;
  }
  throw new Error(`${at}: no rule for the declared type ${t}`);
}

// ---- The client's calls against the collector. ----
const client = new Statuspage('vakt');
client.setApiUrl(base);
const calls = [
  ['getSummary', () => client.api.getSummary(), 'Summary'],
  ['getStatus', () => client.api.getStatus(), 'Status'],
  ['getComponents', () => client.api.getComponents(), 'Components'],
  ['incidents.getAll', () => client.api.incidents.getAll(), 'Incidents'],
  ['incidents.getUnresolved', () => client.api.incidents.getUnresolved(), 'Incidents'],
  ['scheduledMaintenances.getAll', () => client.api.scheduledMaintenances.getAll(), 'ScheduledMaintenances'],
  ['scheduledMaintenances.getUpcoming', () => client.api.scheduledMaintenances.getUpcoming(), 'ScheduledMaintenances'],
  ['scheduledMaintenances.getActive', () => client.api.scheduledMaintenances.getActive(), 'ScheduledMaintenances'],
  // The client asks upcoming.json for all three maintenance calls; the other two documents
  // through its own HTTP client, with the same contract.
  ['GET scheduled-maintenances.json', () => client.apiClient.get('/api/v2/scheduled-maintenances.json').then((r) => r.data), 'ScheduledMaintenances'],
  ['GET scheduled-maintenances/active.json', () => client.apiClient.get('/api/v2/scheduled-maintenances/active.json').then((r) => r.data), 'ScheduledMaintenances'],
];

(async () => {
  for (const [name, call, type] of calls) {
    let data;
    try {
      data = await call();
    } catch (e) {
      console.error(`${name}: the call failed: ${e.message}`);
      process.exit(1);
    }
    try {
      check(data, type, name, null);
    } catch (e) {
      console.error(`${name}: ${e.message}`);
      process.exit(1);
    }
    const counts = Object.entries(data)
      .filter(([, v]) => Array.isArray(v))
      .map(([k, v]) => `${k}=${v.length}`)
      .join(' ');
    console.log(`${name}: ok ${counts}`.trim());
  }
})();
