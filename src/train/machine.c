// Machine profiles: a deck (io/text/deck.c) of rates, sizes and links.
#include "train/machine.h"

#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "text/deck.h"

typedef struct {
    const char *key;
    int *i;           // an integer key, or
    double *d;        // a number
    double min, max;  // bounds, inclusive
    bool optional;
} MachineKey;

enum { MACHINE_KEYS = 23 };

static int machine_keys(Machine *m, MachineKey *k) {
    const double big = 1e12;
    MachineKey keys[MACHINE_KEYS] = {
        {"devices_per_node", &m->devices_per_node, NULL, 1, 1 << 20, false},
        {"nodes", &m->nodes, NULL, 0, 1 << 20, true},
        {"device_memory_gib", NULL, &m->device_memory_gib, 1e-3, big, false},
        {"usable_memory", NULL, &m->usable_memory, 1e-3, 1, false},
        {"peak_tflops", NULL, &m->peak_tflops, 1e-9, big, false},
        {"matmul_tflops", NULL, &m->matmul_tflops, 1e-9, big, false},
        {"matmul_small_tflops", NULL, &m->matmul_small_tflops, 1e-9, big, false},
        {"matmul_small_dim", &m->matmul_small_dim, NULL, 0, 1 << 30, false},
        {"attention_fwd_tflops", NULL, &m->attention_fwd_tflops, 1e-9, big, false},
        {"attention_bwd_tflops", NULL, &m->attention_bwd_tflops, 1e-9, big, false},
        {"attention_head_dim", &m->attention_head_dim, NULL, 1, 1024, true},
        {"elementwise_gbs", NULL, &m->elementwise_gbs, 1e-6, big, false},
        {"optimizer_gbs", NULL, &m->optimizer_gbs, 1e-6, big, false},
        {"host_link_gbs", NULL, &m->host_link_gbs, 1e-6, big, false},
        {"host_memory_gib", NULL, &m->host_memory_gib, 1e-3, big, true},
        {"host_optimizer_gbs", NULL, &m->host_optimizer_gbs, 1e-6, big, true},
        {"op_overhead_us", NULL, &m->op_overhead_us, 0, big, false},
        {"intra_node_gbs", NULL, &m->intra_node_gbs, 1e-6, big, false},
        {"intra_node_p2p_gbs", NULL, &m->intra_node_p2p_gbs, 1e-6, big, false},
        {"intra_node_latency_us", NULL, &m->intra_node_latency_us, 0, big, false},
        {"inter_node_gbs", NULL, &m->inter_node_gbs, 1e-6, big, false},
        {"inter_node_latency_us", NULL, &m->inter_node_latency_us, 0, big, false},
        {"comm_overlap", NULL, &m->comm_overlap, 0, 1, true},
    };
    int n = 0;
    while (n < MACHINE_KEYS && keys[n].key) n++;
    memcpy(k, keys, sizeof keys);
    return n;
}

static bool same_key(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (*a != *b && !((*a == '-' || *a == '_') && (*b == '-' || *b == '_'))) return false;
    return *a == *b;
}

// The text keys: name, device, precision.
static bool text_key(Machine *m, const DeckEntry *e, bool *known, char *err, int err_len) {
    *known = true;
    if (same_key(e->key, "name")) snprintf(m->name, sizeof m->name, "%s", e->value);
    else if (same_key(e->key, "device") && (!strcmp(e->value, "cpu") || !strcmp(e->value, "cuda")))
        m->gpu = strcmp(e->value, "cuda") == 0;
    else if (same_key(e->key, "precision") && (!strcmp(e->value, "fp32") || !strcmp(e->value, "bf16")))
        m->act_bytes = strcmp(e->value, "bf16") == 0 ? 2 : 4;
    else if (same_key(e->key, "device") || same_key(e->key, "precision")) {
        snprintf(err, err_len, "%s:%d: %s must be %s, got '%s'", m->path, e->line, e->key,
                 same_key(e->key, "device") ? "cpu or cuda" : "fp32 or bf16", e->value);
        return false;
    } else *known = false;
    return true;
}

static bool number_key(const Machine *m, const DeckEntry *e, const MachineKey *k, char *err,
                       int err_len) {
    bool ok = k->i ? parse_int(e->value, k->i) : parse_double(e->value, k->d);
    double v = k->i ? *k->i : *k->d;
    if (ok && v >= k->min && v <= k->max) return true;
    snprintf(err, err_len, "%s:%d: %s must be a%s number from %g to %g, got '%s'", m->path,
             e->line, e->key, k->i ? "n integer" : "", k->min, k->max, e->value);
    return false;
}

static bool machine_from_deck(const Deck *deck, Machine *m, char *err, int err_len) {
    MachineKey keys[MACHINE_KEYS];
    int n = machine_keys(m, keys);
    bool seen[MACHINE_KEYS] = {false}, device = false, precision = false;
    for (int i = 0; i < deck->count; i++) {
        const DeckEntry *e = &deck->entries[i];
        bool known;
        if (!text_key(m, e, &known, err, err_len)) return false;
        device = device || (known && same_key(e->key, "device"));
        precision = precision || (known && same_key(e->key, "precision"));
        int k = 0;
        while (!known && k < n && !same_key(e->key, keys[k].key)) k++;
        if (known) continue;
        if (k == n) {
            snprintf(err, err_len, "%s:%d: unknown key '%s' (see src/train/machine.h for the "
                     "keys of a machine profile)", m->path, e->line, e->key);
            return false;
        }
        if (!number_key(m, e, &keys[k], err, err_len)) return false;
        seen[k] = true;
    }
    const char *missing = !device ? "device" : !precision ? "precision" : NULL;
    for (int k = 0; !missing && k < n; k++)
        if (!seen[k] && !keys[k].optional) missing = keys[k].key;
    if (!missing) return true;
    snprintf(err, err_len, "%s: machine profile lacks the key '%s'", m->path, missing);
    return false;
}

bool machine_read(const char *path, Machine *m, char *err, int err_len) {
    memset(m, 0, sizeof *m);
    m->comm_overlap = 1;
    m->attention_head_dim = 64;
    snprintf(m->path, sizeof m->path, "%s", path);
    Deck deck;
    if (!deck_read(path, &deck, err, err_len)) return false;
    bool ok = machine_from_deck(&deck, m, err, err_len);
    deck_free(&deck);
    if (ok && !m->name[0]) snprintf(m->name, sizeof m->name, "%s", path);
    return ok;
}
