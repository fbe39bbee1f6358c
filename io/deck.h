// Run decks and model files: "key = value" lines, '#' starts a comment.
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
// empty key) returns false with a one-line reason in err.
bool deck_read(const char *path, Deck *deck, char *err, int err_len);
void deck_free(Deck *deck);

#endif
