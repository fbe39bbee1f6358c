#include "deck.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

static bool parse_line(Deck *deck, char *line, int lineno, char *err, int err_len) {
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    char *s = trim(line);
    if (!*s) return true;
    char *eq = strchr(s, '=');
    if (!eq) {
        snprintf(err, err_len, "%s:%d: expected 'key = value', got '%s'", deck->path, lineno, s);
        return false;
    }
    *eq = 0;
    char *key = trim(s), *value = trim(eq + 1);
    if (!*key) {
        snprintf(err, err_len, "%s:%d: empty key before '='", deck->path, lineno);
        return false;
    }
    deck->entries = xrealloc(deck->entries, (size_t)(deck->count + 1) * sizeof *deck->entries);
    deck->entries[deck->count++] = (DeckEntry){xstrdup(key), xstrdup(value), lineno};
    return true;
}

bool deck_read(const char *path, Deck *deck, char *err, int err_len) {
    *deck = (Deck){xstrdup(path), NULL, 0};
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "cannot open '%s': %s", path, strerror(errno));
        return false;
    }
    char line[4096];
    int lineno = 0;
    bool ok = true;
    while (ok && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, err_len, "%s:%d: line longer than %zu characters", path, lineno,
                     sizeof line - 1);
            ok = false;
            break;
        }
        ok = parse_line(deck, line, lineno, err, err_len);
    }
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
