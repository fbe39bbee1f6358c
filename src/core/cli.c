// The table-driven command-line parser (cli.h): finding an option by its
// long or short name, converting and checking its value, and printing the
// table back as help, a synopsis or "key = value" lines.
#include "core/cli.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define HELP_COLUMNS 96   // printed help lines are wrapped to this width

// ---- finding options ----

// Long name with '_' taken for '-' (run decks often use either).
static const CliOption *find_long(const CliTable *t, const char *name, size_t len) {
    for (int i = 0; i < t->n; i++) {
        const char *o = t->options[i].name;
        size_t k = 0;
        while (k < len && o[k] && (o[k] == name[k] || (o[k] == '-' && name[k] == '_'))) k++;
        if (k == len && !o[k]) return &t->options[i];
    }
    return NULL;
}

static const CliOption *find_short(const CliTable *t, char c) {
    for (int i = 0; i < t->n; i++)
        if (t->options[i].short_name == c) return &t->options[i];
    return NULL;
}

// The option argv[*i] names, or NULL; *value: what follows its '=' (or NULL).
static const CliOption *option_of(const CliTable *t, const char *arg, const char **value) {
    *value = NULL;
    if (arg[1] != '-') return arg[2] ? NULL : find_short(t, arg[1]);
    const char *eq = strchr(arg, '=');
    if (eq) *value = eq + 1;
    return find_long(t, arg + 2, eq ? (size_t)(eq - arg - 2) : strlen(arg + 2));
}

// Whether the option what ("--name", "-x" or a deck's "name") is in table all.
static bool known_to(const CliTable *all, const char *what) {
    const char *value;
    return what[0] == '-' ? option_of(all, what, &value) != NULL
                          : find_long(all, what, strlen(what)) != NULL;
}

static bool unknown(const CliTable *t, const char *what, char *err, int err_len) {
    if (t->command && (!t->all || known_to(t->all, what)))
        snprintf(err, err_len, "%s does not take the option '%s'", t->command, what);
    else if (t->program)
        snprintf(err, err_len, "unknown option '%s' (see %s --help)", what, t->program);
    else
        snprintf(err, err_len, "unknown option '%s'", what);
    return false;
}

// ---- what a value must be ----

const char *cli_choice_name(const CliName *names, int value) {
    for (const CliName *n = names; n && n->name; n++)
        if (n->value == value) return n->name;
    return NULL;
}

// The choice's names but "": "a, b or c" (sep ", ", last " or ") or "a|b|c".
static void list_names(const CliName *names, const char *sep, const char *last, char *out,
                       size_t len) {
    int count = 0, k = 0;
    for (const CliName *n = names; n->name; n++) count += n->name[0] != 0;
    size_t at = 0;
    out[0] = 0;
    for (const CliName *n = names; n->name && at < len; n++) {
        if (!n->name[0]) continue;
        const char *before = k == 0 ? "" : k == count - 1 ? last : sep;
        at += (size_t)snprintf(out + at, len - at, "%s%s", before, n->name);
        k++;
    }
}

static void bounds_text(const CliOption *o, char *out, size_t len) {
    switch (o->bounds) {
    case CLI_ANY: out[0] = 0; break;
    case CLI_AT_LEAST: snprintf(out, len, " >= %.17g", o->min); break;
    case CLI_BETWEEN: snprintf(out, len, " in [%.17g, %.17g]", o->min, o->max); break;
    case CLI_BELOW: snprintf(out, len, " in [%.17g, %.17g)", o->min, o->max); break;
    }
}

// What a value of o must be: "an integer >= 1", "fp32 or bf16", ...
static void expected(const CliOption *o, char *out, size_t len) {
    char b[96];
    bounds_text(o, b, sizeof b);
    switch (o->kind) {
    case CLI_INT:
    case CLI_INT64: snprintf(out, len, "an integer%s", b); break;
    case CLI_UINT64: snprintf(out, len, "an integer from 0 to 2^63-1%s", b); break;
    case CLI_DOUBLE: snprintf(out, len, "a number%s", b); break;
    case CLI_FLAG: snprintf(out, len, "true or false"); break;
    case CLI_CHOICE: list_names(o->names, ", ", " or ", out, len); break;
    case CLI_STRING: snprintf(out, len, "at most %zu characters", o->size - 1); break;
    case CLI_LIST: snprintf(out, len, "a value"); break;
    }
}

static bool bad_value(const CliOption *o, const char *value, char *err, int err_len) {
    char what[512];
    expected(o, what, sizeof what);
    snprintf(err, err_len, "--%s: expected %s, got '%s'", o->name, what, value);
    return false;
}

static bool within(const CliOption *o, double x) {
    switch (o->bounds) {
    case CLI_ANY: return true;
    case CLI_AT_LEAST: return x >= o->min;
    case CLI_BETWEEN: return x >= o->min && x <= o->max;
    case CLI_BELOW: return x >= o->min && x < o->max;
    }
    return false;
}

// ---- setting values ----

void cli_list_push(CliList *l, const char *s) {
    l->items = xrealloc(l->items, (size_t)(l->n + 1) * sizeof *l->items);
    l->items[l->n++] = xstrdup(s);
}

void cli_list_free(CliList *l) {
    for (int i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

// value, or each of its pieces between o->sep, appended to the list.
static void append(const CliOption *o, CliList *l, const char *value) {
    if (!o->sep) {
        cli_list_push(l, value);
        return;
    }
    char sep[2] = {o->sep, 0}, *copy = xstrdup(value), *save = NULL;
    for (char *p = strtok_r(copy, sep, &save); p; p = strtok_r(NULL, sep, &save))
        cli_list_push(l, p);
    free(copy);
}

static bool set_string(const CliOption *o, void *field, const char *value, char *err,
                       int err_len) {
    if (o->size == 0) {
        *(const char **)field = value;
        return true;
    }
    if (strlen(value) >= o->size) {
        snprintf(err, err_len, "--%s: expected at most %zu characters, got %zu", o->name,
                 o->size - 1, strlen(value));
        return false;
    }
    memcpy(field, value, strlen(value) + 1);
    return true;
}

static bool set_choice(const CliOption *o, void *field, const char *value) {
    for (const CliName *n = o->names; n->name; n++)
        if (strcmp(n->name, value) == 0) {
            *(int *)field = n->value;
            return true;
        }
    return false;
}

static bool set_flag(void *field, const char *value) {
    bool yes = !strcmp(value, "true") || !strcmp(value, "1");
    if (!yes && strcmp(value, "false") && strcmp(value, "0")) return false;
    *(bool *)field = yes;
    return true;
}

// Integers of each width: parsed as int64, checked against o's bounds.
static bool set_integer(const CliOption *o, void *field, const char *value) {
    int64_t v;
    if (!parse_int64(value, &v) || !within(o, (double)v)) return false;
    if (o->kind == CLI_INT) {
        if (v < INT32_MIN || v > INT32_MAX) return false;
        *(int *)field = (int)v;
    } else if (o->kind == CLI_UINT64) {
        if (v < 0) return false;
        *(uint64_t *)field = (uint64_t)v;
    } else {
        *(int64_t *)field = v;
    }
    return true;
}

static bool set_value(const CliOption *o, void *target, const char *value, char *err,
                      int err_len) {
    void *field = (char *)target + o->offset;
    bool ok = false;
    double d;
    switch (o->kind) {
    case CLI_STRING: return set_string(o, field, value, err, err_len);
    case CLI_LIST: append(o, field, value); return true;
    case CLI_INT:
    case CLI_INT64:
    case CLI_UINT64: ok = set_integer(o, field, value); break;
    case CLI_DOUBLE:
        ok = parse_double(value, &d) && within(o, d);
        if (ok) *(double *)field = d;
        break;
    case CLI_FLAG: ok = set_flag(field, value); break;
    case CLI_CHOICE: ok = set_choice(o, field, value); break;
    }
    return ok || bad_value(o, value, err, err_len);
}

bool cli_set(const CliTable *t, void *target, const char *name, const char *value, char *err,
             int err_len) {
    const CliOption *o = find_long(t, name, strlen(name));
    if (!o) return unknown(t, name, err, err_len);
    return set_value(o, target, value, err, err_len);
}

// ---- argv ----

static bool is_option(const char *arg) { return arg[0] == '-' && arg[1]; }

// Whether arg, where a value is due, is an option instead: any "--name", or
// a short option of the table ("-b"; "-1" is a value).
static bool names_option(const CliTable *t, const char *arg) {
    if (arg[0] != '-' || !arg[1]) return false;
    if (arg[1] == '-') return true;
    return !arg[2] && (arg[1] == 'h' || find_short(t, arg[1]));
}

// One option at argv[*i] with its value (the next argument unless "=v" or a
// flag); a greedy list also takes the arguments up to the next option.
static bool parse_one(const CliTable *t, void *target, int argc, char **argv, int *i, char *err,
                      int err_len) {
    const char *arg = argv[*i], *value;
    const CliOption *o = option_of(t, arg, &value);
    if (!o) return unknown(t, arg, err, err_len);
    if (o->kind == CLI_FLAG && !value) value = "true";
    if (!value) {
        if (*i + 1 >= argc) {
            snprintf(err, err_len, "option '%s' needs a value", arg);
            return false;
        }
        if (names_option(t, argv[*i + 1])) {   // "--log --profile": a value left out
            snprintf(err, err_len, "option '%s' needs a value, and '%s' is an option (a value "
                     "that starts with '-': --%s=VALUE)", arg, argv[*i + 1], o->name);
            return false;
        }
        value = argv[++*i];
    }
    if (!set_value(o, target, value, err, err_len)) return false;
    while (o->kind == CLI_LIST && o->greedy && *i + 1 < argc && !is_option(argv[*i + 1]))
        append(o, (CliList *)((char *)target + o->offset), argv[++*i]);
    return true;
}

bool cli_parse(const CliTable *t, void *target, int argc, char **argv, int first,
               CliList *positional, bool *help, char *err, int err_len) {
    *help = false;
    for (int i = first; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            *help = true;
            return true;
        }
        if (is_option(argv[i])) {
            if (!parse_one(t, target, argc, argv, &i, err, err_len)) return false;
        } else if (positional) {
            cli_list_push(positional, argv[i]);
        } else {
            snprintf(err, err_len, "unexpected argument '%s'", argv[i]);
            return false;
        }
    }
    return true;
}

// ---- printing the table ----

// The value's name in help: o->arg, else by kind ("N", "S", "a|b").
static void arg_name(const CliOption *o, char *out, size_t len) {
    if (o->arg) snprintf(out, len, "%s", o->arg);
    else if (o->kind == CLI_FLAG) out[0] = 0;
    else if (o->kind == CLI_CHOICE) list_names(o->names, "|", "|", out, len);
    else if (o->kind == CLI_STRING || o->kind == CLI_LIST) snprintf(out, len, "S");
    else snprintf(out, len, "N");
}

// "-c, --config S" (pad: four blanks before long-only names in a table with short ones).
static void left_side(const CliOption *o, bool pad, char *out, size_t len) {
    char arg[256];
    arg_name(o, arg, sizeof arg);
    const char *blank = arg[0] ? " " : "";
    if (o->short_name)
        snprintf(out, len, "-%c, --%s%s%s", o->short_name, o->name, blank, arg);
    else
        snprintf(out, len, "%s--%s%s%s", pad ? "    " : "", o->name, blank, arg);
}

// text from column `indent` on, wrapped at blanks to HELP_COLUMNS; the first
// line continues what is printed already (at column `at`).
static void print_wrapped(FILE *out, const char *text, int indent, int at) {
    while (*text) {
        int room = HELP_COLUMNS - indent, n = (int)strlen(text);
        if (n > room) {
            n = room;
            while (n > 0 && text[n] != ' ') n--;
            if (n == 0) n = (int)strcspn(text, " ");
        }
        fprintf(out, "%*s%.*s\n", indent - at, "", n, text);
        text += n;
        while (*text == ' ') text++;
        at = 0;
    }
}

void cli_print_options(const CliTable *t, int width, FILE *out) {
    bool pad = false;
    for (int i = 0; i < t->n; i++) pad = pad || t->options[i].short_name;
    for (int i = 0; i < t->n; i++) {
        char lhs[320];
        left_side(&t->options[i], pad, lhs, sizeof lhs);
        int at = fprintf(out, "  %s", lhs);
        if (at > width + 2) {   // too wide: the help starts on the next line
            fprintf(out, "\n");
            at = 0;
        }
        print_wrapped(out, t->options[i].help, width + 3, at);
    }
}

void cli_synopsis(const CliTable *t, char *out, size_t len) {
    size_t at = 0;
    out[0] = 0;
    for (int i = 0; i < t->n && at < len; i++) {
        char arg[256];
        arg_name(&t->options[i], arg, sizeof arg);
        at += (size_t)snprintf(out + at, len - at, "%s[--%s%s%s]", i ? " " : "",
                               t->options[i].name, arg[0] ? " " : "", arg);
    }
}

// o's value in target as a deck writes it.
static void format_value(const CliOption *o, const void *target, char *v, size_t len) {
    const void *f = (const char *)target + o->offset;
    const char *name;
    switch (o->kind) {
    case CLI_STRING:
        name = o->size ? (const char *)f : *(const char *const *)f;
        snprintf(v, len, "%s", name ? name : "");
        break;
    case CLI_INT: snprintf(v, len, "%d", *(const int *)f); break;
    case CLI_INT64: snprintf(v, len, "%" PRId64, *(const int64_t *)f); break;
    case CLI_UINT64: snprintf(v, len, "%" PRIu64, *(const uint64_t *)f); break;
    case CLI_DOUBLE: snprintf(v, len, "%.17g", *(const double *)f); break;
    case CLI_FLAG: snprintf(v, len, "%s", *(const bool *)f ? "true" : "false"); break;
    case CLI_CHOICE:
        name = cli_choice_name(o->names, *(const int *)f);
        if (name) snprintf(v, len, "%s", name);
        else snprintf(v, len, "%d", *(const int *)f);
        break;
    case CLI_LIST: v[0] = 0; break;
    }
}

// Bytes format_value needs for o's value.
static size_t value_room(const CliOption *o, const void *target) {
    const void *f = (const char *)target + o->offset;
    if (o->kind != CLI_STRING) return 64;
    if (o->size) return o->size;
    return *(const char *const *)f ? strlen(*(const char *const *)f) + 1 : 1;
}

char *cli_format(const CliTable *t, const void *target) {
    size_t cap = 4096, at = 0;
    char *out = xmalloc(cap);
    out[0] = 0;
    for (int i = 0; i < t->n; i++) {
        const CliOption *o = &t->options[i];
        if (o->kind == CLI_LIST) continue;
        char *v = xmalloc(value_room(o, target));
        format_value(o, target, v, value_room(o, target));
        size_t need = strlen(o->name) + strlen(v) + 5;   // "name = v\n" and the NUL
        if (at + need > cap) {
            cap = 2 * (at + need);
            out = xrealloc(out, cap);
        }
        at += (size_t)snprintf(out + at, cap - at, "%s = %s\n", o->name, v);
        free(v);
    }
    return out;
}
