// Model shapes by name: a preset (core/config.c) or a model file of
// "key = value" lines (a deck, io/text/deck.c).
#include "train/model_file.h"

#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "text/deck.h"

typedef struct { const char *key; int *i; double *d; } ConfigKey;

#define N_REQUIRED 9   // the shape keys; the RoPE scaling numbers follow
#define N_SCALING 4

// The keys of a model file: the shape, then the numbers of RoPE scaling
// (those its kind uses: RopeScaling, core/config.h).
static int config_keys(ModelConfig *c, ConfigKey *keys) {
    RopeScaling *s = &c->rope_scaling;
    ConfigKey k[] = {
        {"dim", &c->dim, NULL}, {"n_layers", &c->n_layers, NULL}, {"n_heads", &c->n_heads, NULL},
        {"n_kv_heads", &c->n_kv_heads, NULL}, {"ffn_dim", &c->ffn_dim, NULL},
        {"vocab_size", &c->vocab_size, NULL}, {"max_seq_len", &c->max_seq_len, NULL},
        {"rope_theta", NULL, &c->rope_theta}, {"norm_eps", NULL, &c->norm_eps},
        {"rope_scaling_factor", NULL, &s->factor},
        {"rope_scaling_low_freq_factor", NULL, &s->low_freq_factor},
        {"rope_scaling_high_freq_factor", NULL, &s->high_freq_factor},
        {"rope_scaling_original_max_position_embeddings", &s->original_max_seq_len, NULL},
    };
    memcpy(keys, k, sizeof k);
    return (int)(sizeof k / sizeof k[0]);
}

// "rope_scaling = none | linear | llama3".
static bool scaling_kind(const Deck *deck, const DeckEntry *d, RopeScalingKind *kind, char *err,
                         int err_len) {
    if (config_rope_scaling_kind(d->value, kind)) return true;
    snprintf(err, err_len, "%s:%d: rope_scaling must be none, linear or llama3, got '%s'",
             deck->path, d->line, d->value);
    return false;
}

// "tie_embeddings = true | false" (absent: false).
static bool tie_value(const Deck *deck, const DeckEntry *d, bool *tie, char *err, int err_len) {
    *tie = strcmp(d->value, "true") == 0;
    if (*tie || strcmp(d->value, "false") == 0) return true;
    snprintf(err, err_len, "%s:%d: tie_embeddings must be true or false, got '%s'", deck->path,
             d->line, d->value);
    return false;
}

static bool key_value(const Deck *deck, const DeckEntry *d, const ConfigKey *k, char *err,
                      int err_len) {
    bool ok = k->i ? parse_int(d->value, k->i) : parse_double(d->value, k->d);
    double v = k->i ? *k->i : *k->d;
    if (ok && v > 0) return true;
    snprintf(err, err_len, "%s:%d: '%s' must be a positive %s, got '%s'", deck->path, d->line,
             d->key, k->i ? "integer" : "number", d->value);
    return false;
}

// Every shape key; of the scaling numbers, exactly those the kind uses
// (linear: the factor; llama3: all four).
static bool keys_complete(const Deck *deck, const ModelConfig *c, const ConfigKey *keys,
                          const bool *seen, char *err, int err_len) {
    RopeScalingKind kind = c->rope_scaling.kind;
    int used = kind == ROPE_SCALING_LLAMA3 ? N_SCALING : kind == ROPE_SCALING_LINEAR ? 1 : 0;
    for (int k = 0; k < N_REQUIRED + N_SCALING; k++) {
        bool wanted = k < N_REQUIRED + used;
        if (seen[k] == wanted) continue;
        if (wanted)
            snprintf(err, err_len, "%s: model file lacks the key '%s'%s", deck->path, keys[k].key,
                     k < N_REQUIRED ? "" : " (rope_scaling needs it)");
        else
            snprintf(err, err_len, "%s: '%s' is not used by rope_scaling %s; remove it or set "
                     "rope_scaling", deck->path, keys[k].key, config_rope_scaling_name(kind));
        return false;
    }
    return true;
}

static bool config_from_deck(const Deck *deck, ModelConfig *c, char *err, int err_len) {
    memset(c, 0, sizeof *c);
    ConfigKey keys[N_REQUIRED + N_SCALING];
    int n_keys = config_keys(c, keys);
    bool seen[N_REQUIRED + N_SCALING] = {0};
    for (int e = 0; e < deck->count; e++) {
        const DeckEntry *d = &deck->entries[e];
        if (strcmp(d->key, "rope_scaling") == 0) {
            if (!scaling_kind(deck, d, &c->rope_scaling.kind, err, err_len)) return false;
            continue;
        }
        if (strcmp(d->key, "tie_embeddings") == 0) {
            if (!tie_value(deck, d, &c->tie_embeddings, err, err_len)) return false;
            continue;
        }
        int k = 0;
        while (k < n_keys && strcmp(keys[k].key, d->key) != 0) k++;
        if (k == n_keys) {
            snprintf(err, err_len, "%s:%d: unknown model key '%s' (expected one of dim n_layers "
                     "n_heads n_kv_heads ffn_dim vocab_size max_seq_len rope_theta norm_eps, "
                     "optionally tie_embeddings, rope_scaling and its rope_scaling_* numbers)",
                     deck->path, d->line, d->key);
            return false;
        }
        if (!key_value(deck, d, &keys[k], err, err_len)) return false;
        seen[k] = true;
    }
    snprintf(c->name, sizeof c->name, "%s", deck->path);
    return keys_complete(deck, c, keys, seen, err, err_len);
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
