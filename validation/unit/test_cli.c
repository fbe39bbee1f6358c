// The command-line parser (src/core/cli.c): every kind of option from argv
// and from deck keys, bounds, the one-line errors ("--name: expected ...,
// got '...'"), unknown options and missing values, positional arguments and
// --help, the generated help, synopsis and "key = value" lines; and
// llama-train's table (src/train/options.c): enums that round-trip through
// options_format, the precision resolved for the device, the note of a resume
// with other optimizer settings.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/util.h"
#include "core/cli.h"
#include "train/options.h"

typedef enum { COLOR_RED, COLOR_GREEN, COLOR_DEFAULT } Color;

typedef struct {
    int n;
    int64_t big;
    uint64_t seed;
    double frac;
    bool flag;
    char name[8];
    const char *path;
    Color color;
    CliList inputs, tags;
} Opts;

static const CliName colors[] = {{"red", COLOR_RED}, {"green", COLOR_GREEN},
                                 {"", COLOR_DEFAULT}, {"default", COLOR_DEFAULT}, {NULL, 0}};
#define F(f) .offset = offsetof(Opts, f)

static const CliOption specs[] = {
    {"num", 'n', .kind = CLI_INT, F(n), "a count", .bounds = CLI_AT_LEAST, .min = 1},
    {"big", 0, .kind = CLI_INT64, F(big), "a large one"},
    {"seed", 0, .kind = CLI_UINT64, F(seed), "a seed"},
    {"frac", 0, .kind = CLI_DOUBLE, F(frac), "a share", .bounds = CLI_BELOW, .min = 0, .max = 1},
    {"flag", 'f', .kind = CLI_FLAG, F(flag), "a switch"},
    {"name", 0, .kind = CLI_STRING, .size = 8, F(name), "a short text"},
    {"path", 0, .kind = CLI_STRING, F(path), "a file", .arg = "FILE"},
    {"color", 'c', .kind = CLI_CHOICE, .names = colors, F(color), "the colour"},
    {"input", 0, .kind = CLI_LIST, F(inputs), "files", .arg = "FILE ...", .greedy = true},
    {"tag", 0, .kind = CLI_LIST, F(tags), "tags", .arg = "T,...", .sep = ','},
    {"long-winded-option-name", 0, .kind = CLI_INT, F(n),
     "a help text long enough that it has to be wrapped over more than one line of the "
     "printed help, at blanks, never past the ninety-sixth column of the terminal"},
};
static const CliTable table = {specs, (int)(sizeof specs / sizeof specs[0]), "prog", NULL, NULL};

static void opts_free(Opts *o) {
    cli_list_free(&o->inputs);
    cli_list_free(&o->tags);
}

// argv of a program called "prog" with the words of line (split at blanks,
// kept in buf); returns argc.
static int split_words(const char *line, char buf[512], char *argv[32]) {
    char *save = NULL;
    int argc = 1;
    argv[0] = "prog";
    snprintf(buf, 512, "%s", line);
    for (char *w = strtok_r(buf, " ", &save); w && argc < 32; w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    return argc;
}

// Parses the words of line into o; err holds the message.
static bool parse_line(const CliTable *t, Opts *o, const char *line, CliList *positional,
                       bool *help, char *err) {
    char buf[512], *argv[32];
    int argc = split_words(line, buf, argv);
    memset(o, 0, sizeof *o);
    o->color = COLOR_DEFAULT;
    bool h = false;
    return cli_parse(t, o, argc, argv, 1, positional, help ? help : &h, err, 512);
}

static void test_kinds(void) {
    check_begin("cli: every kind from argv (--x v, --x=v, -x v, a flag alone)");
    Opts o;
    char err[512] = "";
    bool ok = parse_line(&table, &o, "-n 7 --big=-9000000000 --seed 18446744073709551 --frac 0.25 "
                         "-f --name abc --path /a/b -c green", NULL, NULL, err);
    CHECK(ok, "refused: %s", err);
    CHECK(o.n == 7 && o.big == -9000000000LL && o.seed == 18446744073709551ULL, "numbers %d %lld",
          o.n, (long long)o.big);
    CHECK(o.frac == 0.25 && o.flag && !strcmp(o.name, "abc") && o.path && !strcmp(o.path, "/a/b"),
          "frac %g flag %d name '%s'", o.frac, o.flag, o.name);
    CHECK(o.color == COLOR_GREEN, "color %d", o.color);
    ok = parse_line(&table, &o, "--flag=false --color= --num=3", NULL, NULL, err);
    CHECK(ok && !o.flag && o.color == COLOR_DEFAULT && o.n == 3, "--flag=false, --color=: %s", err);
    ok = parse_line(&table, &o, "--color default", NULL, NULL, err);
    CHECK(ok && o.color == COLOR_DEFAULT, "the alias 'default': %s", err);
    check_end();
}

static void test_lists(void) {
    check_begin("cli: lists repeat; a greedy one takes the words up to the next option");
    Opts o;
    char err[512] = "";
    bool ok = parse_line(&table, &o, "--input a b c --tag x,y --input d --tag z -n 2", NULL, NULL,
                         err);
    CHECK(ok, "refused: %s", err);
    CHECK(o.inputs.n == 4 && !strcmp(o.inputs.items[0], "a") && !strcmp(o.inputs.items[2], "c") &&
          !strcmp(o.inputs.items[3], "d"), "inputs: %d", o.inputs.n);
    CHECK(o.tags.n == 3 && !strcmp(o.tags.items[1], "y") && !strcmp(o.tags.items[2], "z"),
          "tags: %d", o.tags.n);
    CHECK(o.n == 2, "the option after the list: %d", o.n);
    opts_free(&o);
    check_end();
}

// Parsing args with t fails with exactly message.
static void refused(const CliTable *t, const char *args, const char *message) {
    Opts o;
    char err[512] = "";
    bool ok = parse_line(t, &o, args, NULL, NULL, err);
    CHECK(!ok, "'%s' accepted", args);
    CHECK(strcmp(err, message) == 0, "'%s': message '%s', expected '%s'", args, err, message);
    opts_free(&o);
}

// Each args with t fails with exactly its message: {args, message, ...}, NULL.
static void all_refused(const CliTable *t, const char *const *cases) {
    for (; *cases; cases += 2) refused(t, cases[0], cases[1]);
}

static void test_bad_values(void) {
    check_begin("cli: malformed and out-of-bound values get '--name: expected ..., got ...'");
    static const char *const cases[] = {
        "-n four", "--num: expected an integer >= 1, got 'four'",
        "--num 0", "--num: expected an integer >= 1, got '0'",
        "--num 3000000000", "--num: expected an integer >= 1, got '3000000000'",
        "--big 1.5", "--big: expected an integer, got '1.5'",
        "--seed -1", "--seed: expected an integer from 0 to 2^63-1, got '-1'",
        "--frac 1", "--frac: expected a number in [0, 1), got '1'",
        "--frac nan", "--frac: expected a number in [0, 1), got 'nan'",
        "--frac 0.5x", "--frac: expected a number in [0, 1), got '0.5x'",
        "--flag=maybe", "--flag: expected true or false, got 'maybe'",
        "--color blue", "--color: expected red, green or default, got 'blue'",
        "--name abcdefgh", "--name: expected at most 7 characters, got 8",
        NULL};
    all_refused(&table, cases);
    check_end();
}

static void test_usage_errors(void) {
    check_begin("cli: unknown options, a missing value, stray arguments");
    static const char *const cases[] = {
        "--nope 1", "unknown option '--nope' (see prog --help)",
        "-q", "unknown option '-q' (see prog --help)",
        "-nn 3", "unknown option '-nn' (see prog --help)",
        "-n 3 --num", "option '--num' needs a value",
        "--name --flag", "option '--name' needs a value, and '--flag' is an option (a value "
                         "that starts with '-': --name=VALUE)",
        "--num -n 3", "option '--num' needs a value, and '-n' is an option (a value that "
                      "starts with '-': --num=VALUE)",
        "--name --nope", "option '--name' needs a value, and '--nope' is an option (a value "
                         "that starts with '-': --name=VALUE)",
        "stray", "unexpected argument 'stray'",
        NULL};
    all_refused(&table, cases);
    CliTable cmd = table, bare = table;
    cmd.command = "info";
    bare.program = NULL;
    refused(&cmd, "--nope", "info does not take the option '--nope'");
    refused(&bare, "--nope", "unknown option '--nope'");
    // A command taking the first two options of the program's table: another
    // command's option is not taken, one of no command is unknown.
    CliTable some = {specs, 2, NULL, "bench", &table};
    refused(&some, "--flag", "bench does not take the option '--flag'");
    refused(&some, "-c red", "bench does not take the option '-c'");
    refused(&some, "--nope", "unknown option '--nope'");
    check_end();
}

static void test_positional_and_help(void) {
    check_begin("cli: positional arguments in order; -h stops the parse");
    Opts o;
    CliList pos = {0};
    char err[512] = "";
    bool help = true;
    bool ok = parse_line(&table, &o, "a -n 2 b", &pos, &help, err);
    CHECK(ok && !help && pos.n == 2 && !strcmp(pos.items[0], "a") && !strcmp(pos.items[1], "b"),
          "positional: %d (%s)", pos.n, err);
    cli_list_free(&pos);
    ok = parse_line(&table, &o, "-n 2 --help --nope", NULL, &help, err);
    CHECK(ok && help && o.n == 2, "--help: ok %d help %d", ok, help);
    ok = parse_line(&table, &o, "-h", NULL, &help, err);
    CHECK(ok && help, "-h: ok %d help %d", ok, help);
    check_end();
}

static void test_deck_keys(void) {
    check_begin("cli: cli_set takes deck keys, '_' for '-', flags as true/false/1/0");
    Opts o = {0};
    char err[512] = "";
    CHECK(cli_set(&table, &o, "long_winded_option_name", "5", err, sizeof err) && o.n == 5,
          "'_' key: %s", err);
    CHECK(cli_set(&table, &o, "flag", "1", err, sizeof err) && o.flag, "flag 1: %s", err);
    CHECK(cli_set(&table, &o, "flag", "false", err, sizeof err) && !o.flag, "flag false: %s", err);
    CHECK(!cli_set(&table, &o, "flag", "", err, sizeof err) &&
          !strcmp(err, "--flag: expected true or false, got ''"), "empty flag: '%s'", err);
    CHECK(!cli_set(&table, &o, "bogus", "1", err, sizeof err) &&
          !strcmp(err, "unknown option 'bogus' (see prog --help)"), "unknown key: '%s'", err);
    check_end();
}

// What cli_print_options writes for t.
static char *help_text(const CliTable *t, int width) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cli_print_options(t, width, f);
    fclose(f);
    return text;
}

static void test_help(void) {
    check_begin("cli: help from the table: names, value names, wrapped help, synopsis");
    char *h = help_text(&table, 20);
    const char *want =
        "  -n, --num N          a count\n"
        "      --big N          a large one\n"
        "      --seed N         a seed\n"
        "      --frac N         a share\n"
        "  -f, --flag           a switch\n"
        "      --name S         a short text\n"
        "      --path FILE      a file\n"
        "  -c, --color red|green|default\n"
        "                       the colour\n"
        "      --input FILE ... files\n"
        "      --tag T,...      tags\n"
        "      --long-winded-option-name N\n"
        "                       a help text long enough that it has to be wrapped over more than "
        "one line\n"
        "                       of the printed help, at blanks, never past the ninety-sixth "
        "column of the\n"
        "                       terminal\n";
    CHECK(strcmp(h, want) == 0, "help:\n%s", h);
    int longest = 0;
    for (char *p = h, *nl; (nl = strchr(p, '\n')); p = nl + 1)
        longest = (int)(nl - p) > longest ? (int)(nl - p) : longest;
    CHECK(longest <= 96, "a line of %d columns", longest);
    free(h);
    char syn[256];
    CliTable two = {specs + 3, 2, NULL, NULL, NULL};
    cli_synopsis(&two, syn, sizeof syn);
    CHECK(strcmp(syn, "[--frac N] [--flag]") == 0, "synopsis '%s'", syn);
    check_end();
}

static void test_format(void) {
    check_begin("cli: cli_format writes every option back; cli_set reads it to the same values");
    Opts o, back;
    char err[512] = "";
    bool ok = parse_line(&table, &o, "-n 7 --big 5 --seed 9 --frac 0.1 -f --name ab -c red "
                         "--input x", NULL, NULL, err);
    char *text = cli_format(&table, &o);
    CHECK(ok && strstr(text, "num = 7\nbig = 5\nseed = 9\nfrac = 0.10000000000000001\nflag = "
                       "true\nname = ab\npath = \ncolor = red\nlong-winded-option-name = 7\n"),
          "format:\n%s", text);
    CHECK(!strstr(text, "input"), "lists are left out:\n%s", text);
    memset(&back, 0, sizeof back);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strstr(line, " = ");
        *eq = 0;
        if (strcmp(line, "path") != 0) CHECK(cli_set(&table, &back, line, eq + 3, err, sizeof err),
                                             "%s: %s", line, err);
    }
    CHECK(back.n == 7 && back.big == 5 && back.seed == 9 && back.frac == o.frac && back.flag &&
          !strcmp(back.name, "ab") && back.color == COLOR_RED, "read back differs");
    free(text);
    opts_free(&o);
    CHECK(cli_choice_name(colors, COLOR_DEFAULT) && !strcmp(cli_choice_name(colors, COLOR_DEFAULT),
          ""), "the first name of a value");
    check_end();
}

// options_parse of llama-train on the words of line.
static bool train_parse(TrainOptions *o, const char *line, char *err) {
    char buf[512], *argv[32];
    int argc = split_words(line, buf, argv);
    options_defaults(o);
    bool help;
    return options_parse(o, argc, argv, &help, err, 512);
}

static void test_train_enums(void) {
    check_begin("options: device, precision, attention, device-comm, export-dtype as enums");
    TrainOptions o;
    char err[512] = "";
    CHECK(train_parse(&o, "--device cuda", err) && o.device == DEVICE_CUDA &&
          o.precision == PRECISION_BF16 && o.mixed_precision == PRECISION_OF_DEVICE,
          "cuda without -x: bf16 (%s)", err);
    CHECK(train_parse(&o, "", err) && o.device == DEVICE_CPU && o.precision == PRECISION_FP32,
          "the defaults: fp32 on the CPU");
    CHECK(train_parse(&o, "--device cuda -x fp32 --attention own --device-comm mpi "
                      "--export-dtype bf16", err) && o.precision == PRECISION_FP32 &&
          o.attention == ATTENTION_OWN && o.device_comm == DEVICE_COMM_MPI &&
          o.export_dtype == PRECISION_BF16, "explicit choices: %s", err);
    CHECK(!strcmp(ops_attention_for(DEVICE_CUDA, o.attention, err, sizeof err), "own") &&
          !strcmp(ops_attention_for(DEVICE_CPU, ATTENTION_DEFAULT, err, sizeof err), "cpu"),
          "the attention asked for, resolved by the backend");
    char *text = options_format(&o);
    char want[256];
    snprintf(want, sizeof want, "mixed-precision = %s\ndevice = %s\nattention = own\n"
             "device-comm = mpi\n", precision_name(PRECISION_FP32), device_name(DEVICE_CUDA));
    CHECK(strstr(text, want) && strstr(text, "export-dtype = bf16\n"), "format:\n%s", text);
    free(text);
    CHECK(train_parse(&o, "--device=cpu", err), "%s", err);
    text = options_format(&o);
    CHECK(strstr(text, "mixed-precision = \ndevice = cpu\nattention = \ndevice-comm = nccl\n"),
          "unset choices print as before (''):\n%s", text);
    free(text);
    CHECK(!train_parse(&o, "--device gpu", err) &&
          !strcmp(err, "--device: expected cpu or cuda, got 'gpu'"), "bad device: '%s'", err);
    CHECK(!train_parse(&o, "-x fp16", err) &&
          !strcmp(err, "--mixed-precision: expected fp32, bf16 or default, got 'fp16'"),
          "bad precision: '%s'", err);
    CHECK(!train_parse(&o, "--steps 2 extra", err) &&
          !strcmp(err, "unexpected argument 'extra' (a run deck must come first)"),
          "a stray argument: '%s'", err);
    check_end();
}

// The strict number parsers: the whole string, in range; an underflow to a
// subnormal (or zero) is a number, an overflow is not.
static void test_parse_numbers(void) {
    check_begin("parse_double/parse_int64: whole strings, overflow refused, underflow kept");
    double d = -1;
    CHECK(parse_double("1e-320", &d) && d > 0 && d < 1e-300, "1e-320 (subnormal): %g", d);
    CHECK(parse_double("1e-400", &d) && d == 0, "1e-400 (to zero): %g", d);
    CHECK(!parse_double("1e999", &d) && !parse_double("nan", &d) && !parse_double("1.5x", &d) &&
          !parse_double("", &d), "overflow, NaN, trailing text, empty refused");
    int64_t v = 0;
    CHECK(parse_int64("-9223372036854775808", &v) && v == INT64_MIN, "INT64_MIN: %lld", (long long)v);
    CHECK(!parse_int64("9223372036854775808", &v) && !parse_int64("12 ", &v), "overflow, trailing space");
    CHECK(!parse_int64(" 12", &v) && !parse_double(" 1", &d) && !parse_double("\t1", &d),
          "leading space refused");
    CHECK(!parse_double("0x1p3", &d) && !parse_double("-0X10", &d) && parse_double("-0.5", &d) &&
          d == -0.5 && parse_double("+2", &d) && d == 2, "hexadecimal refused, signs kept");
    check_end();
}

// The note of a resume with other optimizer settings (options_optimizer_changes)
// against a checkpoint's stored options: a key an older checkpoint lacks
// stands for its default, not for an empty value.
static void test_optimizer_changes(void) {
    check_begin("options: a resume's optimizer changes, against a checkpoint without the newer keys");
    TrainOptions o;
    char err[512] = "", out[512];
    CHECK(train_parse(&o, "", err), "%s", err);
    char *saved = options_format(&o);
    options_optimizer_changes(saved, &o, out, sizeof out);
    CHECK(out[0] == 0, "the same options: '%s'", out);
    // An older checkpoint: its options without the schedule's newer keys and AdamW's.
    static const char *const newer[] = {"lr-decay-style = ", "lr-decay-steps = ",
                                        "lr-wsd-decay-steps = ", "adam-beta1 = ", "adam-beta2 = ",
                                        "adam-eps = ", NULL};
    char *old = malloc(strlen(saved) + 1), *w = old;
    for (const char *p = saved; *p;) {
        size_t n = strcspn(p, "\n") + (p[strcspn(p, "\n")] == '\n');
        bool drop = false;
        for (int i = 0; newer[i]; i++) drop |= strncmp(p, newer[i], strlen(newer[i])) == 0;
        if (!drop) w += sprintf(w, "%.*s", (int)n, p);
        p += n;
    }
    CHECK(!strstr(old, "adam-beta2 = ") && !strstr(old, "lr-decay-style = ") && strstr(old, "lr = "),
          "the older options:\n%s", old);
    options_optimizer_changes(old, &o, out, sizeof out);
    CHECK(out[0] == 0, "the defaults against an older checkpoint: '%s'", out);
    CHECK(train_parse(&o, "--adam-beta2 0.99 --lr-decay-style linear", err), "%s", err);
    options_optimizer_changes(old, &o, out, sizeof out);
    CHECK(!strcmp(out, "--lr-decay-style linear (was cosine), --adam-beta2 0.99 (was 0.95)"),
          "other settings against an older checkpoint: '%s'", out);
    CHECK(train_parse(&o, "--weight-decay 0.05 --grad-clip 0.5", err), "%s", err);
    options_optimizer_changes(saved, &o, out, sizeof out);
    CHECK(!strcmp(out, "--weight-decay 0.05 (was 0.1), --grad-clip 0.5 (was 1)"),
          "another weight decay and clip: '%s'", out);
    free(old);
    free(saved);
    check_end();
}

int main(void) {
    test_parse_numbers();
    test_kinds();
    test_lists();
    test_bad_values();
    test_usage_errors();
    test_positional_and_help();
    test_deck_keys();
    test_help();
    test_format();
    test_train_enums();
    test_optimizer_changes();
    return check_exit_code();
}
