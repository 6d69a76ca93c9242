// js-uptime: how long the host has been up, written in JavaScript.
//
// An example of a Vakt check plugin built with componentize-js. A host that rebooted without
// anyone planning it is worth a look: the check warns (or goes critical) while the host has
// been up for less than the configured minutes. See README.md next to it.
//
// Config:
//   warning   warn while up for less than this many minutes (default: 30)
//   critical  critical while up for less than this many minutes (default: none)

import { host } from 'vakt:check/system@0.1.0';
import { log } from 'vakt:check/log@0.1.0';

const KEYS = [
  { name: 'warning', help: 'warn while up for less than this many minutes', default: '30', required: false },
  { name: 'critical', help: 'critical while up for less than this many minutes', default: undefined, required: false },
];

/** A check-error for the agent to report as UNKNOWN: throw it from `run`. */
function badConfig(message) {
  return { tag: 'bad-config', val: message };
}

/** The config pairs as an object, every key known and every number a number. */
function readConfig(pairs) {
  const known = new Map(KEYS.map((k) => [k.name, k]));
  const config = {};
  for (const [name, value] of pairs) {
    if (!known.has(name)) {
      throw badConfig(`unknown key \`${name}\`; this plugin understands: ${KEYS.map((k) => k.name).join(', ')}`);
    }
    config[name] = value;
  }
  for (const key of KEYS) {
    const text = config[key.name] ?? key.default;
    if (text === undefined) {
      continue;
    }
    const minutes = Number(text);
    if (!Number.isFinite(minutes) || minutes < 0) {
      throw badConfig(`key \`${key.name}\`: \`${text}\` is not a number of minutes`);
    }
    config[key.name] = minutes;
  }
  return config;
}

/** "3 d 4 h", "2 h 5 min", "7 min". */
function span(seconds) {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  return `${m} min`;
}

export function info() {
  return {
    name: 'js-uptime',
    version: '0.1.0',
    description: 'How long the host has been up: warns after a recent reboot.',
    needs: ['system'],
    config: KEYS,
  };
}

export function run(pairs) {
  const config = readConfig(pairs);
  let facts;
  try {
    facts = host();
  } catch (e) {
    // A host call that fails throws its host-error as `payload`: denied, invalid, timeout, failed.
    const error = e.payload ?? { tag: 'failed', val: String(e) };
    throw error.tag === 'denied' ? error : { tag: 'failed', val: `reading host facts: ${error.val ?? error.tag}` };
  }
  const seconds = Number(facts.uptimeSeconds); // a u64 arrives as a BigInt
  const minutes = seconds / 60;
  let status = 'ok';
  if (config.critical !== undefined && minutes < config.critical) {
    status = 'critical';
  } else if (config.warning !== undefined && minutes < config.warning) {
    status = 'warning';
  }
  if (status !== 'ok') {
    log('info', `${facts.hostname} rebooted ${span(seconds)} ago`);
  }
  // No warn/crit on the metric: perfdata thresholds are upper bounds to a Nagios reader, and
  // these are lower ones.
  return {
    status,
    summary: `${facts.hostname} up ${span(seconds)}`,
    metrics: [{ name: 'uptime', value: seconds, unit: 's', min: 0 }],
  };
}
