// Run decks (io/text/deck.c): comments, quoted values, a UTF-8 byte order mark,
// duplicate keys, and the one-line errors that name the file and line.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "text/deck.h"

static char path[] = "/tmp/llama-test-deck-XXXXXX";

static void write_deck(const char *text, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        printf("FAIL deck: cannot write %s\n", path);
        exit(1);
    }
}

static const char *value_of(const Deck *d, const char *key) {
    for (int i = 0; i < d->count; i++)
        if (strcmp(d->entries[i].key, key) == 0) return d->entries[i].value;
    return NULL;
}

// read_ok NAME TEXT KEY VALUE...: TEXT reads, and each KEY has VALUE.
static void read_ok(const char *name, const char *text, int n_pairs, const char *const *pairs) {
    check_begin(name);
    write_deck(text, strlen(text));
    Deck d;
    char err[1024] = "";
    CHECK(deck_read(path, &d, err, sizeof err), "refused: %s", err);
    CHECK(d.count == n_pairs, "%d entries, expected %d", d.count, n_pairs);
    for (int i = 0; i < n_pairs && !check_case_failed; i++) {
        const char *v = value_of(&d, pairs[2 * i]);
        CHECK(v && strcmp(v, pairs[2 * i + 1]) == 0, "%s = '%s', expected '%s'", pairs[2 * i],
              v ? v : "(missing)", pairs[2 * i + 1]);
    }
    deck_free(&d);
    check_end();
}

// read_fails NAME TEXT LEN WHAT: TEXT (LEN bytes; 0: up to its NUL) is refused
// with a message naming the file and holding WHAT.
static void read_fails(const char *name, const char *text, size_t len, const char *what) {
    check_begin(name);
    write_deck(text, len ? len : strlen(text));
    Deck d;
    char err[1024] = "";
    CHECK(!deck_read(path, &d, err, sizeof err), "read a deck it should refuse");
    CHECK(strstr(err, path) && strstr(err, what), "message '%s' lacks the file or '%s'", err,
          what);
    check_end();
}

int main(void) {
    int fd = mkstemp(path);
    if (fd < 0) return printf("FAIL deck: mkstemp\n"), 1;
    close(fd);
    read_ok("deck_comments_and_blanks",
            "# a comment = not a key\n\n  steps = 5   # trailing comment\nlr=1e-3\n", 2,
            (const char *[]){"steps", "5", "lr", "1e-3"});
    // '#' glued to text is part of the value; after a blank it starts a comment.
    read_ok("deck_hash_inside_value_kept",
            "sample-prompt = C# and F#\nsave-dir = runs/a#1 # where\n", 2,
            (const char *[]){"sample-prompt", "C# and F#", "save-dir", "runs/a#1"});
    read_ok("deck_quoted_value_keeps_hash_and_blanks",
            "sample-prompt = \"  The # history of\"  # comment\nlog = \"\"\n", 2,
            (const char *[]){"sample-prompt", "  The # history of", "log", ""});
    read_ok("deck_utf8_bom_skipped", "\xEF\xBB\xBF" "config = small\nsteps = 2\n", 2,
            (const char *[]){"config", "small", "steps", "2"});
    read_ok("deck_crlf_lines", "steps = 2\r\nlr = 0.5\r\n", 2,
            (const char *[]){"steps", "2", "lr", "0.5"});
    read_fails("deck_duplicate_key_refused", "steps = 2\nlr = 1\nsteps = 3\n", 0,
               ":3: 'steps' is set again (first at line 1 as 'steps')");
    read_fails("deck_duplicate_key_other_spelling_refused", "max_length = 16\nmax-length = 32\n",
               0, ":2: 'max-length' is set again (first at line 1 as 'max_length')");
    read_fails("deck_unclosed_quote_refused", "a = 1\nsample-prompt = \"open\n", 0,
               ":2: the quoted value has no closing '\"'");
    read_fails("deck_text_after_quote_refused", "sample-prompt = \"a\" b\n", 0,
               ":1: 'b' after the quoted value");
    read_fails("deck_line_without_equals", "steps 5 # no equals\n", 0,
               ":1: expected 'key = value', got 'steps 5'");
    read_fails("deck_empty_key", " = 5\n", 0, ":1: empty key before '='");
    read_fails("deck_nul_byte_refused", "steps = 2\nlr\0 = 1\n", 18, ":2: a NUL byte");
    // In the last line, without a newline: the NUL hid the rest of the line
    // ("steps = 999" read as "steps = 1").
    read_fails("deck_nul_byte_last_line_refused", "lr = 1\nsteps = 1\0steps = 999", 28,
               ":2: a NUL byte");
    read_fails("deck_bom_only_at_start", "a = 1\n\xEF\xBB\xBF" "b = 2\na = 3\n", 0,
               "'a' is set again");
    check_begin("deck_missing_file");
    Deck d;
    char err[1024];
    CHECK(!deck_read("/nonexistent/x.deck", &d, err, sizeof err) &&
          strstr(err, "cannot open '/nonexistent/x.deck'"), "message: %s", err);
    check_end();
    remove(path);
    return check_exit_code();
}
