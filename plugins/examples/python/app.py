"""py-health: an HTTP JSON health endpoint, written in Python.

An example of a Vakt check plugin built with componentize-py. The check GETs `url`, reads
the JSON body and compares one field with an expected value; a numeric field can instead be
compared with warning and critical thresholds. See README.md next to it.

Config:
  url       the health endpoint, e.g. http://127.0.0.1:8080/health (required)
  field     dotted path of the field to read (default: status)
  expect    the value that means healthy (default: ok); ignored when thresholds are set
  warning   warn when the numeric field is above this
  critical  critical when the numeric field is above this
  timeout   seconds to wait (default: 5)
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import net, types

KEYS = [
    types.ConfigKey("url", "health endpoint, e.g. http://127.0.0.1:8080/health", None, True),
    types.ConfigKey("field", "dotted path of the JSON field to read", "status", False),
    types.ConfigKey("expect", "value of the field that means healthy", "ok", False),
    types.ConfigKey("warning", "warn when the numeric field is above this", None, False),
    types.ConfigKey("critical", "critical when the numeric field is above this", None, False),
    types.ConfigKey("timeout", "seconds to wait for the answer", "5", False),
]


def bad_config(message):
    return Err(types.CheckError_BadConfig(message))


def outcome(status, summary, metrics=()):
    return types.Outcome(status, summary, None, list(metrics))


def metric(name, value, unit=None, warn=None, crit=None):
    return types.Metric(name, float(value), unit, warn, crit, 0.0, None)


def read_config(pairs):
    known = {k.name: k for k in KEYS}
    config = {}
    for name, value in pairs:
        if name not in known:
            raise bad_config(f"unknown key `{name}`; this plugin understands: {', '.join(known)}")
        config[name] = value
    for key in KEYS:
        if key.name not in config:
            if key.required:
                raise bad_config(f"missing required key `{key.name}`: {key.help}")
            if key.default is not None:
                config[key.name] = key.default
    for name in ("warning", "critical", "timeout"):
        if name in config:
            try:
                config[name] = float(config[name])
            except ValueError:
                raise bad_config(f"key `{name}`: `{config[name]}` is not a number")
    return config


def lookup(document, path):
    value = document
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


class WitWorld(wit_world.WitWorld):
    def info(self) -> types.Info:
        return types.Info(
            "py-health",
            "0.1.0",
            "Reads a JSON health endpoint and checks one field (example plugin in Python).",
            ["net"],
            KEYS,
        )

    def run(self, pairs):
        config = read_config(pairs)
        probe = net.HttpProbe(
            method="GET",
            url=config["url"],
            headers=[("accept", "application/json")],
            body=None,
            want_headers=["content-type"],
            body_limit=65536,
            insecure=False,
            timeout_ms=int(config["timeout"] * 1000),
        )
        try:
            reply = net.http_request(probe)
        except Err as error:
            problem = error.value
            if isinstance(problem, types.HostError_Denied):
                raise Err(types.CheckError_Denied(problem.value))
            if isinstance(problem, types.HostError_Invalid):
                raise bad_config(problem.value)
            reason = "no answer in time" if isinstance(problem, types.HostError_Timeout) else problem.value
            return outcome(types.Status.CRITICAL, f"{config['url']}: {reason}")

        time = metric("time", round(reply.total_ms, 2), "ms")
        if reply.status != 200:
            return outcome(types.Status.CRITICAL, f"{config['url']} answered {reply.status}", [time])
        try:
            document = json.loads(reply.body)
        except ValueError:
            return outcome(types.Status.CRITICAL, f"{config['url']} did not answer JSON", [time])

        field = config["field"]
        value = lookup(document, field)
        if value is None:
            return outcome(types.Status.CRITICAL, f"`{field}` is missing from the answer", [time])

        if "warning" in config or "critical" in config:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                return outcome(types.Status.UNKNOWN, f"`{field}` is {value!r}, not a number", [time])
            status = types.Status.OK
            if "critical" in config and value > config["critical"]:
                status = types.Status.CRITICAL
            elif "warning" in config and value > config["warning"]:
                status = types.Status.WARNING
            measured = metric(field, value, None, config.get("warning"), config.get("critical"))
            return outcome(status, f"{field} = {value}", [measured, time])

        healthy = str(value) == config["expect"]
        status = types.Status.OK if healthy else types.Status.CRITICAL
        return outcome(status, f"{field} is {value!r}" + ("" if healthy else f", expected {config['expect']!r}"), [time])
