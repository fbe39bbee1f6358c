// Run decks and model files: "key = value" lines.  A '#' at the start of a
// line or after a blank starts a comment ("C#" and "a#b" are values); a value
// in double quotes is everything between them ("a # b", leading blanks kept).
// Each key may appear once ('-' and '_' count as the same).  A UTF-8 byte
// order mark before the first line is skipped.
#ifndef LLAMA_DECK_H
#define LLAMA_DECK_H

#include <stdbool.h>

typedef struct {
    char *key;
    char *value;
    int line;        // 1-based line in the file, for messages
} DeckEntry;

typedef struct {
    char *path;
    DeckEntry *entries;
    int count;
} Deck;

// Reads a deck; on any problem (unreadable file, a line without '=', an
// empty key, a key given twice, an unclosed quote) returns false with a
// one-line reason naming the file and line in err.
bool deck_read(const char *path, Deck *deck, char *err, int err_len);
void deck_free(Deck *deck);

#endif
