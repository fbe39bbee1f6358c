#include "hf/hf_config.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/atomic_file.h"
#include "fs/folder_commit.h"
#include "fs/paths.h"
#include "core/file_kind.h"
#include "core/util.h"

// path itself, or path + "/config.json" when path is a directory; malloc'd.
static char *config_path(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) return xstrdup(path);
    size_t n = strlen(path) + sizeof "/config.json";
    char *p = xmalloc(n);
    snprintf(p, n, "%s/config.json", path);
    return p;
}

// ---- reading -------------------------------------------------------------------

typedef struct {
    const char *path;
    json_t *root;
    char *err;
    int err_len;
} Json;

// A positive integer key; absent or null is an error when required, else
// leaves *out alone.
static bool get_int(const Json *j, const char *key, bool required, int *out) {
    json_t *v = json_object_get(j->root, key);
    if (!v || json_is_null(v)) {
        if (required)
            snprintf(j->err, j->err_len, "%s: required key '%s' is missing", j->path, key);
        return !required;
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > INT_MAX) {
        snprintf(j->err, j->err_len, "%s: '%s' must be a positive integer", j->path, key);
        return false;
    }
    *out = (int)json_integer_value(v);
    return true;
}

// A positive number in object `obj` (the root or a nested one).
static bool get_number(const Json *j, json_t *obj, const char *key, bool required, double *out) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            snprintf(j->err, j->err_len, "%s: required key '%s' is missing", j->path, key);
        return !required;
    }
    if (!json_is_number(v) || !(json_number_value(v) > 0)) {
        snprintf(j->err, j->err_len, "%s: '%s' must be a positive number", j->path, key);
        return false;
    }
    *out = json_number_value(v);
    return true;
}

// A string key that must equal `want` (absent is fine unless required).
static bool expect_string(const Json *j, const char *key, const char *want, bool required,
                          const char *why) {
    json_t *v = json_object_get(j->root, key);
    if (!v && !required) return true;
    if (!v) {
        snprintf(j->err, j->err_len, "%s: required key '%s' is missing (expected \"%s\")",
                 j->path, key, want);
        return false;
    }
    if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0) {
        const char *q = json_is_string(v) ? "'" : "";
        snprintf(j->err, j->err_len, "%s: %s is %s%.40s%s; %s", j->path, key, q,
                 json_is_string(v) ? json_string_value(v) : "not a string", q, why);
        return false;
    }
    return true;
}

// attention_bias / mlp_bias: absent or false.
static bool expect_false(const Json *j, const char *key) {
    json_t *v = json_object_get(j->root, key);
    if (!v || json_is_false(v) || json_is_null(v)) return true;
    snprintf(j->err, j->err_len, "%s: %s is %s; this program's LLaMA has no bias terms", j->path,
             key, json_is_true(v) ? "true" : "not a boolean");
    return false;
}

// ---- RoPE: rope_theta and scaling ----

// A positive number of a RoPE object, named "<name>.<key>" in messages.
static bool rope_number(const Json *j, json_t *obj, const char *name, const char *key,
                        bool required, double *out) {
    json_t *v = json_object_get(obj, key);
    if ((!v || json_is_null(v)) && required)
        snprintf(j->err, j->err_len, "%s: %s.%s is missing", j->path, name, key);
    if (!v || json_is_null(v)) return !required;
    if (!json_is_number(v) || !(json_number_value(v) > 0)) {
        snprintf(j->err, j->err_len, "%s: %s.%s must be a positive number", j->path, name, key);
        return false;
    }
    *out = json_number_value(v);
    return true;
}

// The kind a RoPE object names by rope_type (or the older "type"; absent is
// "default"); the kinds this program cannot compute are refused by name.
static bool rope_kind(const Json *j, json_t *obj, const char *name, RopeScalingKind *kind) {
    json_t *t = json_object_get(obj, "rope_type");
    if (!t || json_is_null(t)) t = json_object_get(obj, "type");
    const char *type = !t || json_is_null(t) ? "default" : json_string_value(t);
    *kind = ROPE_SCALING_NONE;
    if (type && strcmp(type, "default") == 0) return true;
    if (type && strcmp(type, "none") != 0 && config_rope_scaling_kind(type, kind)) return true;
    if (type && strcmp(type, "dynamic") == 0)
        snprintf(j->err, j->err_len, "%s: %s of type 'dynamic' is not supported: it rescales "
                 "with the sequence length at inference, which training does not have", j->path,
                 name);
    else
        snprintf(j->err, j->err_len, "%s: %s of type '%.40s' is not supported (this program "
                 "computes RoPE of type default, linear or llama3; the model would compute "
                 "different positions)", j->path, name, type ? type : "(not a string)");
    return false;
}

// partial_rotary_factor (top level: name ""): absent or 1.
static bool rope_partial_check(const Json *j, json_t *obj, const char *name) {
    json_t *v = json_object_get(obj, "partial_rotary_factor");
    if (!v || json_is_null(v) || (json_is_number(v) && json_number_value(v) == 1.0)) return true;
    snprintf(j->err, j->err_len, "%s: %s%spartial_rotary_factor is not 1; this program rotates "
             "every dimension of a head", j->path, name, name[0] ? "." : "");
    return false;
}

// llama3's pretraining context: original_max_position_embeddings in the
// object or at the top level (transformers prefers the latter: they must
// agree), else max_position_embeddings.
static bool rope_original_max(const Json *j, json_t *obj, const char *name, int max_seq_len,
                              int *out) {
    int top = 0;
    json_t *v = json_object_get(obj, "original_max_position_embeddings");
    if (!get_int(j, "original_max_position_embeddings", false, &top)) return false;
    if (v && !json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) <= 0 ||
                                  json_integer_value(v) > INT_MAX)) {
        snprintf(j->err, j->err_len, "%s: %s.original_max_position_embeddings must be a positive "
                 "integer", j->path, name);
        return false;
    }
    int inner = json_is_integer(v) ? (int)json_integer_value(v) : 0;
    if (inner && top && inner != top) {
        snprintf(j->err, j->err_len, "%s: original_max_position_embeddings %d and %s."
                 "original_max_position_embeddings %d disagree", j->path, top, name, inner);
        return false;
    }
    *out = top ? top : inner ? inner : max_seq_len;
    return true;
}

// One RoPE object (rope_scaling or rope_parameters): its scaling, and its
// rope_theta (*theta left alone when absent).
static bool rope_object_read(const Json *j, json_t *obj, const char *name, int max_seq_len,
                             double *theta, RopeScaling *s) {
    memset(s, 0, sizeof *s);
    if (!json_is_object(obj)) {
        snprintf(j->err, j->err_len, "%s: %s must be an object or null", j->path, name);
        return false;
    }
    if (!rope_kind(j, obj, name, &s->kind) || !rope_partial_check(j, obj, name) ||
        !rope_number(j, obj, name, "rope_theta", false, theta))
        return false;
    if (s->kind == ROPE_SCALING_NONE) return true;
    return rope_number(j, obj, name, "factor", true, &s->factor) &&
           (s->kind != ROPE_SCALING_LLAMA3 ||
            (rope_number(j, obj, name, "low_freq_factor", true, &s->low_freq_factor) &&
             rope_number(j, obj, name, "high_freq_factor", true, &s->high_freq_factor) &&
             rope_original_max(j, obj, name, max_seq_len, &s->original_max_seq_len)));
}

// Where the file states rope_theta or the scaling more than once, the
// statements must agree.  from: the key that stated it first (NULL: none).
static bool rope_agree(const Json *j, const char *name, const char *theta_from, double theta,
                       double now, const char *scaling_from, const RopeScaling *a,
                       const RopeScaling *b) {
    char da[256], db[256];
    if (theta_from && theta != now) {
        snprintf(j->err, j->err_len, "%s: %s %g and %s.rope_theta %g disagree", j->path,
                 theta_from, theta, name, now);
        return false;
    }
    if (!scaling_from || config_rope_scaling_equal(a, b)) return true;
    config_rope_scaling_describe(a, da, sizeof da);
    config_rope_scaling_describe(b, db, sizeof db);
    snprintf(j->err, j->err_len, "%s: %s (%s) and %s (%s) disagree", j->path, scaling_from, da,
             name, db);
    return false;
}

// rope_theta (default 10000) and the scaling, from the top level and
// rope_scaling (transformers 4) or rope_parameters (5).
static bool rope_read(const Json *j, ModelConfig *m) {
    static const char *const keys[2] = {"rope_scaling", "rope_parameters"};
    static const char *const thetas[2] = {"rope_scaling.rope_theta", "rope_parameters.rope_theta"};
    json_t *top = json_object_get(j->root, "rope_theta");
    const char *theta_from = top && !json_is_null(top) ? "rope_theta" : NULL, *scaling_from = NULL;
    m->rope_theta = 10000.0;
    if (!get_number(j, j->root, "rope_theta", false, &m->rope_theta) ||
        !rope_partial_check(j, j->root, ""))
        return false;
    for (int k = 0; k < 2; k++) {
        json_t *obj = json_object_get(j->root, keys[k]);
        if (!obj || json_is_null(obj)) continue;
        double theta = 0;
        RopeScaling s;
        if (!rope_object_read(j, obj, keys[k], m->max_seq_len, &theta, &s) ||
            !rope_agree(j, keys[k], theta > 0 ? theta_from : NULL, m->rope_theta, theta,
                        scaling_from, &m->rope_scaling, &s))
            return false;
        if (theta > 0) m->rope_theta = theta, theta_from = thetas[k];
        m->rope_scaling = s;
        scaling_from = keys[k];
    }
    return true;
}

// bos_token_id / eos_token_id: an id, a list of ids (the first is reported), null or absent (-1).
static bool token_id(const Json *j, const char *key, int64_t *out) {
    json_t *v = json_object_get(j->root, key);
    if (json_is_array(v) && json_array_size(v) > 0) v = json_array_get(v, 0);
    *out = -1;
    if (!v || json_is_null(v)) return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        snprintf(j->err, j->err_len, "%s: %s must be a token id, a list of them, or null",
                 j->path, key);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

// The refusals: anything that would make this program's model differ.
static bool features_check(const Json *j) {
    return expect_string(j, "model_type", "llama", true,
                         "only LLaMA models (LlamaForCausalLM) can be loaded") &&
           expect_string(j, "hidden_act", "silu", false,
                         "this program's MLP is SwiGLU (hidden_act \"silu\")") &&
           expect_false(j, "attention_bias") && expect_false(j, "mlp_bias");
}

static bool shape_read(const Json *j, ModelConfig *m) {
    bool ok = get_int(j, "hidden_size", true, &m->dim) &&
           get_int(j, "intermediate_size", true, &m->ffn_dim) &&
           get_int(j, "num_hidden_layers", true, &m->n_layers) &&
           get_int(j, "num_attention_heads", true, &m->n_heads) &&
           get_int(j, "vocab_size", true, &m->vocab_size) &&
           get_int(j, "max_position_embeddings", true, &m->max_seq_len) &&
           get_number(j, j->root, "rms_norm_eps", true, &m->norm_eps);
    m->n_kv_heads = m->n_heads;   // no grouped-query attention unless stated
    return ok && get_int(j, "num_key_value_heads", false, &m->n_kv_heads) &&
           rope_read(j, m);
}

// head_dim, when given, must be hidden_size / num_attention_heads.
static bool head_dim_check(const Json *j, const ModelConfig *m) {
    int hd = config_head_dim(m);
    if (!get_int(j, "head_dim", false, &hd)) return false;
    if (hd != config_head_dim(m)) {
        snprintf(j->err, j->err_len, "%s: head_dim %d differs from hidden_size / "
                 "num_attention_heads = %d; this program needs them equal", j->path, hd,
                 config_head_dim(m));
        return false;
    }
    return true;
}

static bool extras_read(const Json *j, HfConfig *hf) {
    json_t *tie = json_object_get(j->root, "tie_word_embeddings");
    if (tie && !json_is_boolean(tie) && !json_is_null(tie)) {
        snprintf(j->err, j->err_len, "%s: tie_word_embeddings must be true or false", j->path);
        return false;
    }
    hf->model.tie_embeddings = json_is_true(tie);
    hf->pad_id = -1;
    json_t *dt = json_object_get(j->root, "torch_dtype");
    if (!json_is_string(dt)) dt = json_object_get(j->root, "dtype");
    if (json_is_string(dt))
        snprintf(hf->torch_dtype, sizeof hf->torch_dtype, "%s", json_string_value(dt));
    return token_id(j, "bos_token_id", &hf->bos_id) && token_id(j, "eos_token_id", &hf->eos_id);
}

// Whether the folder of config.json file holds an export's unfinished commit
// (then err says so).
static bool export_unfinished(const char *file, char *err, int err_len) {
    char dir[4200];
    path_parent(file, dir, sizeof dir);
    if (!folder_commit_unfinished(dir)) return false;
    snprintf(err, err_len, "%s holds %s: an export into it was stopped while moving its files in, "
             "so its config.json, weights and tokenizer may come from two exports; export into "
             "it again", dir, FOLDER_COMMIT_MARK);
    return true;
}

bool hf_config_read(const char *path, HfConfig *hf, char *err, int err_len) {
    memset(hf, 0, sizeof *hf);
    char *file = config_path(path);
    json_error_t je;
    Json j = {file, NULL, err, err_len};
    bool readable = access(file, R_OK) == 0;
    if (!readable) snprintf(err, err_len, "cannot read '%s': %s", file, strerror(errno));
    if (!readable || export_unfinished(file, err, err_len) ||
        !file_kind_check(file, "a config.json file", err, err_len)) {
        free(file);
        return false;
    }
    j.root = json_load_file(file, JSON_REJECT_DUPLICATES, &je);
    bool ok = j.root && json_is_object(j.root);
    if (!j.root)
        snprintf(err, err_len, "%s: cannot read it as JSON: %s (line %d)", file, je.text, je.line);
    else if (!ok)
        snprintf(err, err_len, "%s: not a JSON object: not a Hugging Face config.json", file);
    ModelConfig *m = &hf->model;
    snprintf(m->name, sizeof m->name, "%s", file);
    ok = ok && features_check(&j) && shape_read(&j, m) && config_validate(m, err, err_len) &&
         head_dim_check(&j, m) && extras_read(&j, hf);
    json_decref(j.root);
    free(file);
    return ok;
}

// ---- writing ---------------------------------------------------------------------

// The fewest significant digits (%.Ng) that read back as exactly v, and no
// fewer than a whole number's integer digits (10000.0 rather than 1e4).
static int digits_exact(double v) {
    char buf[64];
    int p = 1;
    for (; p < 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (v >= 1 && v < 1e15 && v == (double)(int64_t)v) {
        int int_digits = snprintf(buf, sizeof buf, "%.0f", v);
        if (int_digits > p) p = int_digits;
    }
    return p;
}

static json_t *token_json(int64_t id) { return id >= 0 ? json_integer(id) : json_null(); }

// rope_scaling as transformers reads it (4.x and 5.x); null for plain RoPE.
static json_t *rope_scaling_json(const RopeScaling *s) {
    if (s->kind == ROPE_SCALING_NONE) return json_null();
    json_t *o = json_pack("{s:s, s:f}", "rope_type", config_rope_scaling_name(s->kind), "factor",
                          s->factor);
    if (o && s->kind == ROPE_SCALING_LLAMA3 &&
        (json_object_set_new(o, "low_freq_factor", json_real(s->low_freq_factor)) ||
         json_object_set_new(o, "high_freq_factor", json_real(s->high_freq_factor)) ||
         json_object_set_new(o, "original_max_position_embeddings",
                             json_integer(s->original_max_seq_len)))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

// The significant digits every real of the file needs to read back exactly.
static int config_digits(const ModelConfig *m) {
    const RopeScaling *s = &m->rope_scaling;
    double v[6] = {m->norm_eps, m->rope_theta, 0.02, s->factor, s->low_freq_factor,
                   s->high_freq_factor};
    int digits = 1;
    for (int i = 0; i < 6; i++)
        if (digits_exact(v[i]) > digits) digits = digits_exact(v[i]);
    return digits;
}

static json_t *config_json(const HfConfig *hf, const char *dtype) {
    const ModelConfig *m = &hf->model;
    json_t *o = json_pack(
        "{s:[s], s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:o}",
        "architectures", "LlamaForCausalLM", "model_type", "llama", "hidden_act", "silu",
        "hidden_size", m->dim, "intermediate_size", m->ffn_dim, "num_hidden_layers", m->n_layers,
        "num_attention_heads", m->n_heads, "num_key_value_heads", m->n_kv_heads,
        "head_dim", config_head_dim(m), "vocab_size", m->vocab_size,
        "max_position_embeddings", m->max_seq_len, "rms_norm_eps", m->norm_eps,
        "rope_theta", m->rope_theta, "rope_scaling", rope_scaling_json(&m->rope_scaling));
    json_t *rest = json_pack("{s:b, s:b, s:b, s:f, s:f, s:b, s:s, s:o, s:o, s:o}",
                             "tie_word_embeddings", m->tie_embeddings, "attention_bias", 0, "mlp_bias", 0,
                             "initializer_range", 0.02, "attention_dropout", 0.0, "use_cache", 1,
                             "torch_dtype", dtype, "bos_token_id", token_json(hf->bos_id),
                             "eos_token_id", token_json(hf->eos_id),
                             "pad_token_id", token_json(hf->pad_id));
    if (o && rest) json_object_update(o, rest);
    json_decref(rest);
    return o;
}

static bool write_check(const HfConfig *hf, const char *file, const char **dtype, char *err,
                        int err_len) {
    *dtype = hf->torch_dtype[0] ? hf->torch_dtype : "float32";
    if (strcmp(*dtype, "float32") != 0 && strcmp(*dtype, "bfloat16") != 0) {
        snprintf(err, err_len, "%s: torch_dtype '%s' is not one the exporter writes (float32 or "
                 "bfloat16)", file, *dtype);
        return false;
    }
    return config_validate(&hf->model, err, err_len);
}

bool hf_json_write(const char *file, json_t *o, int digits, char *err, int err_len) {
    char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(digits))
                   : NULL;
    if (!text) {
        snprintf(err, err_len, "%s: cannot encode it as JSON", file);
        return false;
    }
    size_t n = strlen(text);
    text = xrealloc(text, n + 2);
    memcpy(text + n, "\n", 2);
    bool ok = atomic_file_write(file, text, n + 1, err, err_len);
    free(text);
    return ok;
}

bool hf_config_write(const char *path, const HfConfig *hf, char *err, int err_len) {
    char *file = config_path(path);
    const char *dtype;
    bool ok = write_check(hf, file, &dtype, err, err_len);
    json_t *o = ok ? config_json(hf, dtype) : NULL;
    if (o) json_object_set_new(o, "exported_by", json_string("llama-hpc"));
    ok = ok && hf_json_write(file, o, config_digits(&hf->model), err, err_len);
    json_decref(o);
    free(file);
    return ok;
}

bool hf_config_is_own_export(const char *dir) {
    char *file = config_path(dir);
    json_t *o = file_kind_irregular(file) ? NULL : json_load_file(file, 0, NULL);
    const char *by = json_string_value(json_object_get(o, "exported_by"));
    bool own = by && strcmp(by, "llama-hpc") == 0;
    json_decref(o);
    free(file);
    return own;
}

bool hf_generation_config_write(const char *dir, const HfConfig *hf, char *err, int err_len) {
    char file[4200];
    snprintf(file, sizeof file, "%s/generation_config.json", dir);
    json_t *o = json_pack("{s:o, s:o, s:o}", "bos_token_id", token_json(hf->bos_id),
                          "eos_token_id", token_json(hf->eos_id), "pad_token_id",
                          token_json(hf->pad_id));
    bool ok = hf_json_write(file, o, 17, err, err_len);
    json_decref(o);
    return ok;
}
