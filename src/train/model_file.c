// Model shapes by name: a preset (core/config.c) or a model file of
// "key = value" lines (a deck, io/text/deck.c).
#include "train/model_file.h"

#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "text/deck.h"

typedef struct { const char *key; int *i; double *d; } ConfigKey;

static bool config_from_deck(const Deck *deck, ModelConfig *c, char *err, int err_len) {
    memset(c, 0, sizeof *c);
    ConfigKey keys[] = {
        {"dim", &c->dim, NULL}, {"n_layers", &c->n_layers, NULL}, {"n_heads", &c->n_heads, NULL},
        {"n_kv_heads", &c->n_kv_heads, NULL}, {"ffn_dim", &c->ffn_dim, NULL},
        {"vocab_size", &c->vocab_size, NULL}, {"max_seq_len", &c->max_seq_len, NULL},
        {"rope_theta", NULL, &c->rope_theta}, {"norm_eps", NULL, &c->norm_eps},
    };
    int n_keys = (int)(sizeof keys / sizeof keys[0]);
    bool seen[16] = {0};
    for (int e = 0; e < deck->count; e++) {
        const DeckEntry *d = &deck->entries[e];
        int k = 0;
        while (k < n_keys && strcmp(keys[k].key, d->key) != 0) k++;
        if (k == n_keys) {
            snprintf(err, err_len, "%s:%d: unknown model key '%s' (expected one of dim n_layers "
                     "n_heads n_kv_heads ffn_dim vocab_size max_seq_len rope_theta norm_eps)",
                     deck->path, d->line, d->key);
            return false;
        }
        bool ok = keys[k].i ? parse_int(d->value, keys[k].i) : parse_double(d->value, keys[k].d);
        double v = keys[k].i ? *keys[k].i : *keys[k].d;
        if (!ok || !(v > 0)) {
            snprintf(err, err_len, "%s:%d: '%s' must be a positive %s, got '%s'", deck->path,
                     d->line, d->key, keys[k].i ? "integer" : "number", d->value);
            return false;
        }
        seen[k] = true;
    }
    for (int k = 0; k < n_keys; k++)
        if (!seen[k]) {
            snprintf(err, err_len, "%s: model file lacks the key '%s'", deck->path, keys[k].key);
            return false;
        }
    snprintf(c->name, sizeof c->name, "%s", deck->path);
    return true;
}

bool config_load(const char *name_or_file, ModelConfig *cfg, char *err, int err_len) {
    if (config_preset(name_or_file, cfg)) return config_validate(cfg, err, err_len);
    if (!strchr(name_or_file, '/') && !strchr(name_or_file, '.')) {
        snprintf(err, err_len, "unknown preset '%s' (presets: %s; or give a model file path)",
                 name_or_file, config_preset_names());
        return false;
    }
    Deck deck;
    if (!deck_read(name_or_file, &deck, err, err_len)) return false;
    bool ok = config_from_deck(&deck, cfg, err, err_len) && config_validate(cfg, err, err_len);
    deck_free(&deck);
    return ok;
}
