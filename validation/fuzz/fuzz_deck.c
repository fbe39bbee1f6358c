// libFuzzer harness: run decks and model files (io/text/deck.c, and config_load in
// src/core/config.c, which reads a model file with it).  Every entry of a deck that
// reads must have a non-empty key and a line number within the file.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "text/deck.h"
#include "fuzz_input.h"
#include "train/model_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, "run.deck");
    Deck deck;
    char err[1024];
    if (deck_read(path, &deck, err, sizeof err)) {
        for (int i = 0; i < deck.count; i++)
            if (!deck.entries[i].key[0] || deck.entries[i].line < 1 ||
                (size_t)deck.entries[i].line > size)
                abort();
        deck_free(&deck);
    }
    ModelConfig cfg;
    if (config_load(path, &cfg, err, sizeof err)) config_validate(&cfg, err, sizeof err);
    return 0;
}
