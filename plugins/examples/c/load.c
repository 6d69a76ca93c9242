/*
 * c-load: the 1, 5 and 15 minute load averages per core against thresholds, written in C.
 *
 * An example of a Vakt check plugin in a language without a Vakt SDK: the bindings come from
 * `wit-bindgen c`, the component from `vakt-agent componentize`. See README.md next to it.
 *
 * Config: `warning` and `critical`, each one number (for all three averages) or three
 * separated by commas (load1,load5,load15), per core; defaults "2,1.5,1.2" and "4,3,2.5".
 * A value above its threshold raises the status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/check.h"

/* Everything handed back to the host is freed by the generated post-return code, so every
 * string is a heap copy. */
static void set(check_string_t *out, const char *text) { check_string_dup(out, text); }

static void key(vakt_check_types_config_key_t *k, const char *name, const char *def, const char *help) {
  set(&k->name, name);
  set(&k->help, help);
  k->default_.is_some = def != NULL;
  if (def) set(&k->default_.val, def);
  k->required = false;
}

void exports_check_info(check_info_t *ret) {
  set(&ret->name, "c-load");
  set(&ret->version, "0.1.0");
  set(&ret->description, "Load averages per core against thresholds (example plugin in C).");
  ret->needs.len = 1;
  ret->needs.ptr = malloc(sizeof(check_string_t));
  set(&ret->needs.ptr[0], "system");
  ret->config.len = 2;
  ret->config.ptr = calloc(2, sizeof(vakt_check_types_config_key_t));
  key(&ret->config.ptr[0], "warning", "2,1.5,1.2", "warning thresholds per core: one number or load1,load5,load15");
  key(&ret->config.ptr[1], "critical", "4,3,2.5", "critical thresholds per core: one number or load1,load5,load15");
}

static bool fail(check_check_error_t *err, uint8_t tag, const char *message) {
  err->tag = tag;
  set(&err->val.bad_config, message); /* the union's members share one layout */
  return false;
}

/* Parse "a" or "a,b,c" into three numbers. */
static bool parse_triple(const char *text, double out[3]) {
  char *end;
  for (int i = 0; i < 3; i++) {
    out[i] = strtod(text, &end);
    if (end == text) return false;
    if (i == 0 && *end == '\0') {
      out[1] = out[2] = out[0];
      return true;
    }
    if (i < 2 && *end != ',') return false;
    text = end + 1;
  }
  return *end == '\0';
}

bool exports_check_run(check_list_tuple2_string_string_t *config, check_outcome_t *ret, check_check_error_t *err) {
  double warning[3], critical[3];
  parse_triple("2,1.5,1.2", warning);
  parse_triple("4,3,2.5", critical);
  char message[256];

  for (size_t i = 0; i < config->len; i++) {
    char name[64], value[128];
    snprintf(name, sizeof name, "%.*s", (int)config->ptr[i].f0.len, (const char *)config->ptr[i].f0.ptr);
    snprintf(value, sizeof value, "%.*s", (int)config->ptr[i].f1.len, (const char *)config->ptr[i].f1.ptr);
    double *target = strcmp(name, "warning") == 0 ? warning : strcmp(name, "critical") == 0 ? critical : NULL;
    if (!target) {
      snprintf(message, sizeof message, "unknown key `%s`; this plugin understands: warning, critical", name);
      check_list_tuple2_string_string_free(config);
      return fail(err, VAKT_CHECK_TYPES_CHECK_ERROR_BAD_CONFIG, message);
    }
    if (!parse_triple(value, target)) {
      snprintf(message, sizeof message, "key `%s`: `%s` is not a number or three separated by commas", name, value);
      check_list_tuple2_string_string_free(config);
      return fail(err, VAKT_CHECK_TYPES_CHECK_ERROR_BAD_CONFIG, message);
    }
  }
  check_list_tuple2_string_string_free(config);

  vakt_check_system_load_avg_t load;
  vakt_check_system_host_error_t host_error;
  if (!vakt_check_system_load(&load, &host_error)) {
    uint8_t tag = host_error.tag == VAKT_CHECK_TYPES_HOST_ERROR_DENIED ? VAKT_CHECK_TYPES_CHECK_ERROR_DENIED
                                                                       : VAKT_CHECK_TYPES_CHECK_ERROR_FAILED;
    if (host_error.tag == VAKT_CHECK_TYPES_HOST_ERROR_TIMEOUT) {
      snprintf(message, sizeof message, "reading the load timed out");
    } else {
      snprintf(message, sizeof message, "%.*s", (int)host_error.val.denied.len, (const char *)host_error.val.denied.ptr);
    }
    vakt_check_types_host_error_free(&host_error);
    return fail(err, tag, message);
  }

  double cores = load.logical_cores > 0 ? load.logical_cores : 1;
  double values[3] = {load.one / cores, load.five / cores, load.fifteen / cores};
  const char *names[3] = {"load1", "load5", "load15"};
  vakt_check_types_status_t status = VAKT_CHECK_TYPES_STATUS_OK;
  ret->metrics.len = 3;
  ret->metrics.ptr = calloc(3, sizeof(vakt_check_types_metric_t));
  for (int i = 0; i < 3; i++) {
    if (values[i] > critical[i]) status = VAKT_CHECK_TYPES_STATUS_CRITICAL;
    else if (values[i] > warning[i] && status == VAKT_CHECK_TYPES_STATUS_OK) status = VAKT_CHECK_TYPES_STATUS_WARNING;
    vakt_check_types_metric_t *m = &ret->metrics.ptr[i];
    set(&m->name, names[i]);
    m->value = values[i];
    m->warn = (check_option_f64_t){true, warning[i]};
    m->crit = (check_option_f64_t){true, critical[i]};
    m->min = (check_option_f64_t){true, 0};
  }
  snprintf(message, sizeof message, "load per core (%u cores): %.2f, %.2f, %.2f", load.logical_cores, values[0],
           values[1], values[2]);
  ret->status = status;
  set(&ret->summary, message);
  ret->details.is_some = false;
  return true;
}
