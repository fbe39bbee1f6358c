#include "text/deck.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file_kind.h"
#include "core/util.h"

#define DECK_LINE_MAX 4095   // characters in a line, its newline included

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

// Cuts s at its first '#' that starts the text or follows a blank.
static void cut_comment(char *s) {
    for (char *p = s; *p; p++)
        if (*p == '#' && (p == s || isspace((unsigned char)p[-1]))) {
            *p = 0;
            return;
        }
}

// The value after '=': "quoted" (everything between the quotes, which may
// hold '#'; only blanks or a comment may follow) or plain (up to a comment).
static bool parse_value(const Deck *deck, char *v, int lineno, char **out, char *err,
                        int err_len) {
    v = trim(v);
    if (*v != '"') {
        cut_comment(v);
        *out = trim(v);
        return true;
    }
    char *close = strchr(v + 1, '"');
    if (!close) {
        snprintf(err, err_len, "%s:%d: the quoted value has no closing '\"'", deck->path, lineno);
        return false;
    }
    *close = 0;
    char *rest = trim(close + 1);
    if (*rest && *rest != '#') {
        snprintf(err, err_len, "%s:%d: '%s' after the quoted value; put a comment after ' #'",
                 deck->path, lineno, rest);
        return false;
    }
    *out = v + 1;
    return true;
}

// Keys are the same when they differ only in '-' against '_' (llama-train
// takes max-length and max_length alike).
static bool same_key(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (*a != *b && !((*a == '-' || *a == '_') && (*b == '-' || *b == '_'))) return false;
    return *a == *b;
}

static bool check_new_key(const Deck *deck, const char *key, int lineno, char *err, int err_len) {
    for (int i = 0; i < deck->count; i++)
        if (same_key(deck->entries[i].key, key)) {
            snprintf(err, err_len, "%s:%d: '%s' is set again (first at line %d as '%s'); give "
                     "each key once", deck->path, lineno, key, deck->entries[i].line,
                     deck->entries[i].key);
            return false;
        }
    return true;
}

static bool parse_line(Deck *deck, char *line, int lineno, char *err, int err_len) {
    char *s = trim(line);
    if (!*s || *s == '#') return true;
    char *eq = strchr(s, '=');
    if (!eq) {
        cut_comment(s);
        snprintf(err, err_len, "%s:%d: expected 'key = value', got '%s'", deck->path, lineno,
                 trim(s));
        return false;
    }
    *eq = 0;
    char *key = trim(s), *value;
    if (!*key) {
        snprintf(err, err_len, "%s:%d: empty key before '='", deck->path, lineno);
        return false;
    }
    if (!parse_value(deck, eq + 1, lineno, &value, err, err_len) ||
        !check_new_key(deck, key, lineno, err, err_len))
        return false;
    deck->entries = xrealloc(deck->entries, (size_t)(deck->count + 1) * sizeof *deck->entries);
    deck->entries[deck->count++] = (DeckEntry){xstrdup(key), xstrdup(value), lineno};
    return true;
}

// A UTF-8 byte order mark (some editors write one) is not part of the first key.
static char *skip_bom(char *line, int lineno) {
    return lineno == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0 ? line + 3 : line;
}

bool deck_read(const char *path, Deck *deck, char *err, int err_len) {
    *deck = (Deck){xstrdup(path), NULL, 0};
    const char *kind = file_kind_irregular(path);
    if (kind) {
        snprintf(err, err_len, "'%s' is %s, not a file of key = value lines", path, kind);
        deck_free(deck);
        return false;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "cannot open '%s': %s", path, strerror(errno));
        deck_free(deck);
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0;
    bool ok = true;
    while (ok && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (memchr(line, 0, (size_t)n)) {   // the last line too: a NUL hid the rest of it
            snprintf(err, err_len, "%s:%d: a NUL byte: not a text file", path, lineno);
            ok = false;
        } else if (n > DECK_LINE_MAX) {
            snprintf(err, err_len, "%s:%d: line longer than %d characters", path, lineno,
                     DECK_LINE_MAX);
            ok = false;
        } else {
            ok = parse_line(deck, skip_bom(line, lineno), lineno, err, err_len);
        }
    }
    free(line);
    if (ok && ferror(f)) {
        snprintf(err, err_len, "error reading '%s': %s", path, strerror(errno));
        ok = false;
    }
    fclose(f);
    if (!ok) deck_free(deck);
    return ok;
}

void deck_free(Deck *deck) {
    for (int i = 0; i < deck->count; i++) {
        free(deck->entries[i].key);
        free(deck->entries[i].value);
    }
    free(deck->entries);
    free(deck->path);
    *deck = (Deck){0};
}
