// The command-line parser of the three programs: a table of options (long
// name, short letter, kind, the field it sets, help text) read from argv
// ("--name value", "--name=value", "-x value"; flags take none) and, for
// llama-train's run decks, key by key (cli_set).  The same table prints the
// help, the synopsis and the options back as "key = value" lines.  Every
// malformed value gets one line "--name: expected ..., got '...'".
#ifndef LLAMA_CLI_H
#define LLAMA_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    CLI_INT,      // int
    CLI_INT64,    // int64_t
    CLI_UINT64,   // uint64_t, written as a non-negative integer
    CLI_DOUBLE,   // double, finite
    CLI_FLAG,     // bool: "--name" alone sets it; "--name=v" and decks take true/false/1/0
    CLI_STRING,   // char[size]; size 0: a const char * to the argument itself
    CLI_CHOICE,   // an enum (int-sized): one of `names`
    CLI_LIST,     // CliList: every occurrence appends (see `sep`, `greedy`)
} CliKind;

// A name of a choice and the enum value it stands for.  Several names may
// share a value (aliases); the first is the one printed back.  "" is a name
// like any other (a default left unnamed).  Lists end with {NULL, 0}.
typedef struct {
    const char *name;
    int value;
} CliName;

// The bounds a number must keep.
typedef enum {
    CLI_ANY,        // none
    CLI_AT_LEAST,   // min <= x
    CLI_BETWEEN,    // min <= x <= max
    CLI_BELOW,      // min <= x < max
} CliBounds;

// A list option's values (copies, malloc'd): cli_list_free releases them.
typedef struct {
    char **items;
    int n;
} CliList;

typedef struct {
    const char *name;         // long name, without "--"
    char short_name;          // 0: none
    CliKind kind;
    size_t size;              // CLI_STRING: the char array's size (0: a pointer)
    size_t offset;            // of the field in the struct the table fills
    const char *help;         // one sentence or more; wrapped when printed
    const char *arg;          // the value's name in help ("FILE|DIR"); NULL: by kind
    const CliName *names;     // CLI_CHOICE
    CliBounds bounds;         // numbers
    double min, max;
    char sep;                 // CLI_LIST: also split each value at this character
    bool greedy;              // CLI_LIST: the arguments after the value up to the next
                              // option are values too ("--input a b c")
} CliOption;

typedef struct CliTable {
    const CliOption *options;
    int n;
    const char *program;      // unknown options say "(see PROGRAM --help)"; NULL: nothing
    const char *command;      // non-NULL: unknown options say "COMMAND does not take the
                              // option '...'" instead
    const struct CliTable *all;   // with command: the program's options (another command's
                              // is "not taken", one of none "unknown"); NULL: all "not taken"
} CliTable;

// Parses argv[first] to argv[argc - 1] into target.  Arguments that are not
// options go to positional (copies; NULL: each is an error).  "-h" or
// "--help" stops the parse with *help set.  False with one line in err.
bool cli_parse(const CliTable *t, void *target, int argc, char **argv, int first,
               CliList *positional, bool *help, char *err, int err_len);
// Sets the option called name (a long name; '_' counts as '-') to value, as
// a line "name = value" of a run deck does.  False with one line in err.
bool cli_set(const CliTable *t, void *target, const char *name, const char *value, char *err,
             int err_len);

// The options, one per line: "  -c, --config S   help", the help from
// column width + 3 on, wrapped (on the next line when the left side is wider).
void cli_print_options(const CliTable *t, int width, FILE *out);
// "[--dtype fp32|bf16] [--tp N]": every option of t, for a usage line.
void cli_synopsis(const CliTable *t, char *out, size_t len);
// Every option of t as "name = value" lines, in the table's order (a run deck
// that sets them all again); malloc'd.  Lists are left out.
char *cli_format(const CliTable *t, const void *target);

// The name of value in names (the first that has it); NULL when none does.
const char *cli_choice_name(const CliName *names, int value);
void cli_list_push(CliList *l, const char *s);
void cli_list_free(CliList *l);

#endif
