// Hugging Face config.json <-> ModelConfig: write/read round trip, the keys
// transformers needs, real released configs (transformers 4 and 5 layouts),
// and every refusal with its message; model files; the tokenizer files of an
// export (tokenizer_config.json as transformers reads it).
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/config.h"
#include "hf/hf_config.h"
#include "hf/hf_tokenizer.h"
#include "train/model_file.h"

static char tmpdir[64];
static char err[1024];

#define CHECK_FAILS(ok, want)                                                              \
    do {                                                                                   \
        bool ok_ = (ok);                                                                   \
        CHECK(!ok_, "succeeded, expected an error containing '%s'", (want));               \
        CHECK(ok_ || strstr(err, (want)), "message '%s' lacks '%s'", err, (want));         \
        if (!ok_ && getenv("SHOW_ERRORS")) printf("  error: %s\n", err);                  \
    } while (0)

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

// Writes text as <tmpdir>/<name> and returns the path.
static const char *put(const char *name, const char *text) {
    const char *p = tmp_path(name);
    FILE *f = fopen(p, "w");
    if (f) fputs(text, f), fclose(f);
    return p;
}

// ---- round trip ---------------------------------------------------------------------

static void test_roundtrip(void) {
    check_begin("hf_config_roundtrip");
    HfConfig out = {.bos_id = 128000, .eos_id = 128001, .torch_dtype = "bfloat16"}, in;
    bool ok = config_load("llama3-8b", &out.model, err, sizeof err) &&
              hf_config_write(tmpdir, &out, err, sizeof err) &&
              hf_config_read(tmpdir, &in, err, sizeof err);
    CHECK(ok, "%s", err);
    const ModelConfig *a = &out.model, *b = &in.model;
    if (ok) {
        CHECK(a->dim == b->dim && a->n_layers == b->n_layers && a->n_heads == b->n_heads &&
              a->n_kv_heads == b->n_kv_heads && a->ffn_dim == b->ffn_dim &&
              a->vocab_size == b->vocab_size && a->max_seq_len == b->max_seq_len,
              "sizes differ after the round trip");
        CHECK(a->rope_theta == b->rope_theta && a->norm_eps == b->norm_eps,
              "rope_theta %.17g / norm_eps %.17g came back as %.17g / %.17g", a->rope_theta,
              a->norm_eps, b->rope_theta, b->norm_eps);
        CHECK(in.bos_id == 128000 && in.eos_id == 128001, "token ids %lld %lld",
              (long long)in.bos_id, (long long)in.eos_id);
        CHECK(!in.model.tie_embeddings && !strcmp(in.torch_dtype, "bfloat16"), "extras");
    }
    CHECK(access(tmp_path("config.json.tmp"), F_OK) != 0, "temporary file left");
    // an odd epsilon survives exactly too
    out.model.norm_eps = 1.0 / 3.0e5;
    out.bos_id = out.eos_id = -1;
    out.torch_dtype[0] = 0;
    ok = hf_config_write(tmp_path("odd.json"), &out, err, sizeof err) &&
         hf_config_read(tmp_path("odd.json"), &in, err, sizeof err);
    CHECK(ok && in.model.norm_eps == out.model.norm_eps, "eps not exact: %s", err);
    CHECK(ok && in.bos_id == -1 && in.eos_id == -1 && !strcmp(in.torch_dtype, "float32"),
          "absent ids / default dtype");
    check_end();
}

static const char *json_str(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : "";
}

// The keys transformers.LlamaForCausalLM needs, as this program's model is.
static void test_written_keys(void) {
    check_begin("hf_config_written_keys");
    HfConfig hf = {.bos_id = -1, .eos_id = 2, .pad_id = -1, .torch_dtype = "float32"};
    bool ok = config_load("tiny", &hf.model, err, sizeof err) &&
              hf_config_write(tmp_path("keys.json"), &hf, err, sizeof err);
    CHECK(ok, "%s", err);
    json_t *o = ok ? json_load_file(tmp_path("keys.json"), 0, NULL) : NULL;
    CHECK(!ok || o, "written file is not JSON");
    if (o) {
        json_t *arch = json_object_get(o, "architectures");
        CHECK(!strcmp(json_string_value(json_array_get(arch, 0)), "LlamaForCausalLM"),
              "architectures");
        CHECK(!strcmp(json_str(o, "model_type"), "llama") &&
              !strcmp(json_str(o, "hidden_act"), "silu") &&
              !strcmp(json_str(o, "torch_dtype"), "float32"), "string keys");
        CHECK(json_is_false(json_object_get(o, "tie_word_embeddings")) &&
              json_is_false(json_object_get(o, "attention_bias")) &&
              json_is_false(json_object_get(o, "mlp_bias")) &&
              json_is_true(json_object_get(o, "use_cache")), "boolean keys");
        CHECK(json_is_null(json_object_get(o, "rope_scaling")) &&
              json_is_null(json_object_get(o, "bos_token_id")) &&
              json_integer_value(json_object_get(o, "eos_token_id")) == 2, "null keys / ids");
        CHECK(json_integer_value(json_object_get(o, "head_dim")) == 8 &&
              json_integer_value(json_object_get(o, "num_key_value_heads")) == 4 &&
              json_real_value(json_object_get(o, "initializer_range")) == 0.02, "numbers");
        json_decref(o);
    }
    check_end();
}

// ---- released configs -----------------------------------------------------------------

static const char *llama2_7b =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"bos_token_id\": 1, \"eos_token_id\": 2,"
    " \"hidden_act\": \"silu\", \"hidden_size\": 4096, \"initializer_range\": 0.02,"
    " \"intermediate_size\": 11008, \"max_position_embeddings\": 4096, \"model_type\": \"llama\","
    " \"num_attention_heads\": 32, \"num_hidden_layers\": 32, \"num_key_value_heads\": 32,"
    " \"pretraining_tp\": 1, \"rms_norm_eps\": 1e-05, \"rope_scaling\": null,"
    " \"tie_word_embeddings\": false, \"torch_dtype\": \"float16\","
    " \"transformers_version\": \"4.31.0.dev0\", \"use_cache\": true, \"vocab_size\": 32000}";

// Older configs: no num_key_value_heads, no rope_theta.
static const char *llama1_7b =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"bos_token_id\": 0, \"eos_token_id\": 1,"
    " \"hidden_act\": \"silu\", \"hidden_size\": 4096, \"intermediate_size\": 11008,"
    " \"max_position_embeddings\": 2048, \"model_type\": \"llama\", \"num_attention_heads\": 32,"
    " \"num_hidden_layers\": 32, \"rms_norm_eps\": 1e-06, \"vocab_size\": 32000}";

// transformers 5 layout: rope_parameters, dtype; a list of eos ids.
static const char *llama3_v5 =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false, \"bos_token_id\":"
    " 128000, \"dtype\": \"bfloat16\", \"eos_token_id\": [128001, 128008, 128009],"
    " \"head_dim\": 128, \"hidden_act\": \"silu\", \"hidden_size\": 4096,"
    " \"intermediate_size\": 14336, \"max_position_embeddings\": 8192, \"mlp_bias\": false,"
    " \"model_type\": \"llama\", \"num_attention_heads\": 32, \"num_hidden_layers\": 32,"
    " \"num_key_value_heads\": 8, \"rms_norm_eps\": 1e-05, \"rope_parameters\":"
    " {\"rope_theta\": 500000.0, \"rope_type\": \"default\"}, \"tie_word_embeddings\": true,"
    " \"vocab_size\": 128256}";

static void test_released(void) {
    check_begin("hf_config_released_configs");
    HfConfig hf;
    bool ok = hf_config_read(put("l2.json", llama2_7b), &hf, err, sizeof err);
    CHECK(ok, "llama-2: %s", err);
    ModelConfig want;
    config_load("llama2-7b", &want, err, sizeof err);
    const ModelConfig *m = &hf.model;
    CHECK(!ok || (m->dim == want.dim && m->n_layers == want.n_layers &&
                  m->n_heads == want.n_heads && m->n_kv_heads == want.n_kv_heads &&
                  m->ffn_dim == want.ffn_dim && m->vocab_size == want.vocab_size &&
                  m->max_seq_len == want.max_seq_len && m->rope_theta == want.rope_theta &&
                  m->norm_eps == want.norm_eps), "llama-2 7b differs from the preset");
    CHECK(!ok || (hf.bos_id == 1 && hf.eos_id == 2 && !strcmp(hf.torch_dtype, "float16")),
          "llama-2 extras");
    ok = hf_config_read(put("l1.json", llama1_7b), &hf, err, sizeof err);
    CHECK(ok, "llama-1: %s", err);
    CHECK(!ok || (m->n_kv_heads == 32 && m->rope_theta == 10000.0 && m->norm_eps == 1e-6),
          "llama-1 defaults: kv %d theta %g", m->n_kv_heads, m->rope_theta);
    ok = hf_config_read(put("l3.json", llama3_v5), &hf, err, sizeof err);
    CHECK(ok, "llama-3 (transformers 5): %s", err);
    CHECK(!ok || (m->n_kv_heads == 8 && m->rope_theta == 500000.0 && hf.eos_id == 128001 &&
                  hf.model.tie_embeddings && !strcmp(hf.torch_dtype, "bfloat16")),
          "llama-3 fields");
    check_end();
}

// LLaMA-3.2 1B's released config.json (tied, llama3 RoPE scaling), as Meta published it.
static const char *llama32_1b =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false, \"attention_dropout\":"
    " 0.0, \"bos_token_id\": 128000, \"eos_token_id\": 128001, \"head_dim\": 64, \"hidden_act\":"
    " \"silu\", \"hidden_size\": 2048, \"initializer_range\": 0.02, \"intermediate_size\": 8192,"
    " \"max_position_embeddings\": 131072, \"mlp_bias\": false, \"model_type\": \"llama\","
    " \"num_attention_heads\": 32, \"num_hidden_layers\": 16, \"num_key_value_heads\": 8,"
    " \"pretraining_tp\": 1, \"rms_norm_eps\": 1e-05, \"rope_scaling\": {\"factor\": 32.0,"
    " \"high_freq_factor\": 4.0, \"low_freq_factor\": 1.0, \"original_max_position_embeddings\":"
    " 8192, \"rope_type\": \"llama3\"}, \"rope_theta\": 500000.0, \"tie_word_embeddings\": true,"
    " \"torch_dtype\": \"bfloat16\", \"transformers_version\": \"4.45.0.dev0\", \"use_cache\": true,"
    " \"vocab_size\": 128256}";

static bool same_config(const ModelConfig *a, const ModelConfig *b) {
    return a->dim == b->dim && a->n_layers == b->n_layers && a->n_heads == b->n_heads &&
           a->n_kv_heads == b->n_kv_heads && a->ffn_dim == b->ffn_dim &&
           a->vocab_size == b->vocab_size && a->max_seq_len == b->max_seq_len &&
           a->rope_theta == b->rope_theta && a->norm_eps == b->norm_eps &&
           a->tie_embeddings == b->tie_embeddings &&
           config_rope_scaling_equal(&a->rope_scaling, &b->rope_scaling);
}

// The LLaMA-3.1/3.2 presets: the released config reads as the preset, and each
// preset has the parameter count of transformers' model of that config
// (LlamaForCausalLM(config).parameters(), tied tensors once).
static void test_tied_presets(void) {
    check_begin("hf_config_llama3.x_presets");
    HfConfig hf;
    ModelConfig want;
    bool ok = hf_config_read(put("l32.json", llama32_1b), &hf, err, sizeof err) &&
              config_load("llama3.2-1b", &want, err, sizeof err);
    CHECK(ok, "%s", err);
    CHECK(!ok || same_config(&hf.model, &want), "LLaMA-3.2 1B's config.json differs from the preset");
    const struct { const char *name; int64_t params; } released[] = {
        {"llama3.2-1b", 1235814400}, {"llama3.2-3b", 3212749824}, {"llama3.1-8b", 8030261248}};
    for (int i = 0; i < 3; i++) {
        ok = config_load(released[i].name, &want, err, sizeof err);
        CHECK(ok && config_params_total(&want) == released[i].params, "%s: %lld parameters, "
              "transformers has %lld", released[i].name, (long long)config_params_total(&want),
              (long long)released[i].params);
    }
    check_end();
}

// ---- refusals -----------------------------------------------------------------------

// llama2_7b with `from` replaced by `to`, read: must fail with `want`.
static void edited_fails(const char *from, const char *to, const char *want) {
    char text[4096];
    const char *at = strstr(llama2_7b, from);
    if (!at) {
        CHECK(0, "test bug: '%s' not in the config", from);
        return;
    }
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - llama2_7b), llama2_7b, to,
             at + strlen(from));
    HfConfig hf;
    CHECK_FAILS(hf_config_read(put("edited.json", text), &hf, err, sizeof err), want);
}

static void test_refusals(void) {
    check_begin("hf_config_refusals");
    edited_fails("\"hidden_size\": 4096, ", "", "required key 'hidden_size' is missing");
    edited_fails("\"rms_norm_eps\": 1e-05, ", "", "required key 'rms_norm_eps' is missing");
    edited_fails("\"model_type\": \"llama\",", "", "required key 'model_type' is missing");
    edited_fails("\"model_type\": \"llama\"", "\"model_type\": \"mistral\"",
                 "model_type is 'mistral'; only LLaMA models");
    edited_fails("\"rope_scaling\": null", "\"rope_parameters\": {\"rope_type\": \"yarn\"}",
                 "rope_parameters of type 'yarn' is not supported");
    edited_fails("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", "hidden_act is 'gelu'");
    edited_fails("\"pretraining_tp\": 1", "\"attention_bias\": true",
                 "attention_bias is true; this program's LLaMA has no bias terms");
    edited_fails("\"pretraining_tp\": 1", "\"mlp_bias\": true", "mlp_bias is true");
    edited_fails("\"pretraining_tp\": 1", "\"head_dim\": 64",
                 "head_dim 64 differs from hidden_size / num_attention_heads = 128");
    edited_fails("\"hidden_size\": 4096", "\"hidden_size\": \"4096\"",
                 "'hidden_size' must be a positive integer");
    edited_fails("\"num_key_value_heads\": 32", "\"num_key_value_heads\": 5",
                 "n_kv_heads 5 does not divide n_heads 32");
    edited_fails("\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": -1", "'rms_norm_eps' must be a "
                 "positive number");
    edited_fails("\"vocab_size\": 32000}", "\"vocab_size\": 32000", "cannot read it as JSON");
    HfConfig hf;
    CHECK_FAILS(hf_config_read(tmp_path("absent.json"), &hf, err, sizeof err), "cannot read '");
    CHECK_FAILS(hf_config_read(put("array.json", "[1, 2]"), &hf, err, sizeof err),
                "not a JSON object");
    check_end();
}

static void test_write_refusals(void) {
    check_begin("hf_config_write_refusals");
    HfConfig hf = {.bos_id = -1, .eos_id = -1, .pad_id = -1};
    config_load("tiny", &hf.model, err, sizeof err);
    hf.model.tie_embeddings = true;   // a tied model writes and reads back tied
    HfConfig back;
    CHECK(hf_config_write(tmp_path("tied.json"), &hf, err, sizeof err) &&
          hf_config_read(tmp_path("tied.json"), &back, err, sizeof err) && back.model.tie_embeddings,
          "tied config round trip: %s", err);
    hf.model.tie_embeddings = false;
    snprintf(hf.torch_dtype, sizeof hf.torch_dtype, "float16");
    CHECK_FAILS(hf_config_write(tmp_path("w.json"), &hf, err, sizeof err),
                "torch_dtype 'float16' is not one the exporter writes");
    hf.torch_dtype[0] = 0;
    hf.model.n_kv_heads = 3;
    CHECK_FAILS(hf_config_write(tmp_path("w.json"), &hf, err, sizeof err), "does not divide");
    hf.model.n_kv_heads = 4;
    CHECK_FAILS(hf_config_write("/nonexistent-dir/config.json", &hf, err, sizeof err),
                "cannot create '/nonexistent-dir/config.json.tmp'");
    CHECK(access(tmp_path("w.json"), F_OK) != 0, "a refused write left a file");
    check_end();
}

// ---- RoPE scaling ---------------------------------------------------------------------

// LLaMA 3.1 8B's config.json (transformers 4.43 layout).
static const char *llama31_8b =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"bos_token_id\": 128000, \"eos_token_id\":"
    " 128001, \"hidden_act\": \"silu\", \"hidden_size\": 4096, \"intermediate_size\": 14336,"
    " \"max_position_embeddings\": 131072, \"model_type\": \"llama\", \"num_attention_heads\": 32,"
    " \"num_hidden_layers\": 32, \"num_key_value_heads\": 8, \"rms_norm_eps\": 1e-05,"
    " \"rope_scaling\": {\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
    " \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}, \"rope_theta\":"
    " 500000.0, \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\","
    " \"vocab_size\": 128256}";

// The same model as transformers 5 writes it.
static const char *llama31_v5 =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_act\": \"silu\", \"hidden_size\": 4096,"
    " \"intermediate_size\": 14336, \"max_position_embeddings\": 131072, \"model_type\":"
    " \"llama\", \"num_attention_heads\": 32, \"num_hidden_layers\": 32, \"num_key_value_heads\":"
    " 8, \"rms_norm_eps\": 1e-05, \"rope_parameters\": {\"factor\": 8.0, \"high_freq_factor\":"
    " 4.0, \"low_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192, \"rope_theta\":"
    " 500000.0, \"rope_type\": \"llama3\"}, \"vocab_size\": 128256}";

// llama31_8b with `from` replaced by `to`, read into hf.
static bool edited_read(const char *from, const char *to, HfConfig *hf) {
    char text[4096];
    const char *at = strstr(llama31_8b, from);
    CHECK(at != NULL, "test bug: '%s' not in the config", from);
    if (!at) return false;
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - llama31_8b), llama31_8b, to,
             at + strlen(from));
    return hf_config_read(put("rope.json", text), hf, err, sizeof err);
}

// Written and read back: the same scaling, as transformers reads it.
static void scaling_round_trip(const HfConfig *hf, const char *what) {
    HfConfig back;
    bool ok = hf_config_write(tmp_path("rope-out.json"), hf, err, sizeof err) &&
              hf_config_read(tmp_path("rope-out.json"), &back, err, sizeof err);
    CHECK(ok, "%s: %s", what, err);
    CHECK(!ok || (config_rope_scaling_equal(&hf->model.rope_scaling, &back.model.rope_scaling) &&
                  back.model.rope_theta == hf->model.rope_theta),
          "%s: the scaling did not read back alike", what);
    json_t *o = ok ? json_load_file(tmp_path("rope-out.json"), 0, NULL) : NULL;
    json_t *sc = json_object_get(o, "rope_scaling");
    CHECK(!ok || !strcmp(json_str(sc, "rope_type"),
                         config_rope_scaling_name(hf->model.rope_scaling.kind)),
          "%s: rope_scaling.rope_type '%s'", what, json_str(sc, "rope_type"));
    json_decref(o);
}

static void test_rope_scaling_read(void) {
    check_begin("hf_config_rope_scaling");
    HfConfig hf;
    const RopeScaling *s = &hf.model.rope_scaling;
    bool ok = edited_read("", "", &hf);
    CHECK(ok, "llama-3.1: %s", err);
    CHECK(!ok || (s->kind == ROPE_SCALING_LLAMA3 && s->factor == 8 && s->low_freq_factor == 1 &&
                  s->high_freq_factor == 4 && s->original_max_seq_len == 8192 &&
                  hf.model.rope_theta == 500000.0), "llama-3.1 scaling");
    if (ok) scaling_round_trip(&hf, "llama3");
    // transformers 5: rope_parameters, with rope_theta inside
    ok = hf_config_read(put("l31v5.json", llama31_v5), &hf, err, sizeof err);
    CHECK(ok && s->kind == ROPE_SCALING_LLAMA3 && s->factor == 8 && s->high_freq_factor == 4 &&
          hf.model.rope_theta == 500000.0, "transformers 5 layout: %s", err);
    ok = edited_read("}, \"rope_theta\": 500000.0,", ", \"rope_theta\": 500000.0},", &hf);
    CHECK(ok && s->kind == ROPE_SCALING_LLAMA3 && hf.model.rope_theta == 500000.0,
          "rope_theta inside rope_scaling: %s", err);
    ok = edited_read(", \"original_max_position_embeddings\": 8192", "", &hf);
    CHECK(ok && s->original_max_seq_len == 131072,
          "no original_max_position_embeddings: max_position_embeddings (%s)", err);
    ok = edited_read("{\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
                     " \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}",
                     "{\"type\": \"linear\", \"factor\": 2.5}", &hf);
    CHECK(ok && s->kind == ROPE_SCALING_LINEAR && s->factor == 2.5 && s->low_freq_factor == 0,
          "linear: %s", err);
    if (ok) scaling_round_trip(&hf, "linear");
    check_end();
}

#define SCALING "{\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, " \
                "\"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}"
#define TYPE "\"rope_type\": \"llama3\""
#define THETA "\"rope_theta\": 500000.0,"

static void rope_fails(const char *from, const char *to, const char *want) {
    HfConfig hf;
    CHECK_FAILS(edited_read(from, to, &hf), want);
}

static void test_rope_scaling_refusals(void) {
    check_begin("hf_config_rope_scaling_refusals");
    rope_fails(TYPE, "\"rope_type\": \"dynamic\"", "rope_scaling of type 'dynamic' is not "
               "supported: it rescales with the sequence length at inference, which training "
               "does not have");
    rope_fails(TYPE, "\"rope_type\": \"yarn\"", "rope_scaling of type 'yarn' is not supported");
    rope_fails(TYPE, "\"type\": \"su\"", "rope_scaling of type 'su' is not supported");
    rope_fails(TYPE, "\"rope_type\": 3", "rope_scaling of type '(not a string)'");
    rope_fails(SCALING, "3", "rope_scaling must be an object or null");
    rope_fails("\"factor\": 8.0", "\"factor\": -8.0", "rope_scaling.factor must be a positive");
    rope_fails("\"low_freq_factor\": 1.0, ", "", "rope_scaling.low_freq_factor is missing");
    rope_fails("\"high_freq_factor\": 4.0", "\"high_freq_factor\": 1.0",
               "high_freq_factor must be above low_freq_factor");
    rope_fails("8192,", "8192.5,", "rope_scaling.original_max_position_embeddings must be a "
               "positive integer");
    rope_fails(THETA, THETA " \"original_max_position_embeddings\": 4096,",
               "original_max_position_embeddings 4096 and rope_scaling."
               "original_max_position_embeddings 8192 disagree");
    rope_fails(TYPE, TYPE ", \"partial_rotary_factor\": 0.5",
               "rope_scaling.partial_rotary_factor is not 1");
    rope_fails(THETA, THETA " \"partial_rotary_factor\": 0.5,", ": partial_rotary_factor is not 1");
    rope_fails("}, " THETA, ", \"rope_theta\": 10000.0}, " THETA,
               "rope_theta 500000 and rope_scaling.rope_theta 10000 disagree");
    rope_fails(THETA, THETA " \"rope_parameters\": {\"rope_type\": \"default\"},",
               "rope_scaling (llama3 (factor 8, low_freq_factor 1, high_freq_factor 4, "
               "original_max_position_embeddings 8192)) and rope_parameters (none) disagree");
    check_end();
}

// Model files: rope_scaling and the numbers its kind uses.
static void test_rope_scaling_model_file(void) {
    check_begin("model_file_rope_scaling");
    const char *shape = "dim = 64\nn_layers = 2\nn_heads = 4\nn_kv_heads = 2\nffn_dim = 128\n"
                        "vocab_size = 256\nmax_seq_len = 64\nrope_theta = 10000\nnorm_eps = 1e-5\n";
    char text[1024];
    ModelConfig c;
    const RopeScaling *s = &c.rope_scaling;
    snprintf(text, sizeof text, "%srope_scaling = llama3\nrope_scaling_factor = 8\n"
             "rope_scaling_low_freq_factor = 1\nrope_scaling_high_freq_factor = 4\n"
             "rope_scaling_original_max_position_embeddings = 16\n", shape);
    bool ok = config_load(put("l3.model", text), &c, err, sizeof err);
    CHECK(ok && s->kind == ROPE_SCALING_LLAMA3 && s->factor == 8 && s->low_freq_factor == 1 &&
          s->high_freq_factor == 4 && s->original_max_seq_len == 16, "llama3 model file: %s", err);
    ok = config_load(put("plain.model", shape), &c, err, sizeof err);
    CHECK(ok && s->kind == ROPE_SCALING_NONE, "a model file without rope_scaling: %s", err);
    snprintf(text, sizeof text, "%srope_scaling = llama3\nrope_scaling_factor = 8\n", shape);
    CHECK_FAILS(config_load(put("bad.model", text), &c, err, sizeof err),
                "lacks the key 'rope_scaling_low_freq_factor' (rope_scaling needs it)");
    snprintf(text, sizeof text, "%srope_scaling = linear\nrope_scaling_factor = 2\n"
             "rope_scaling_low_freq_factor = 1\n", shape);
    CHECK_FAILS(config_load(put("bad.model", text), &c, err, sizeof err),
                "'rope_scaling_low_freq_factor' is not used by rope_scaling linear");
    snprintf(text, sizeof text, "%srope_scaling_factor = 2\n", shape);
    CHECK_FAILS(config_load(put("bad.model", text), &c, err, sizeof err),
                "'rope_scaling_factor' is not used by rope_scaling none");
    snprintf(text, sizeof text, "%srope_scaling = yarn\n", shape);
    CHECK_FAILS(config_load(put("bad.model", text), &c, err, sizeof err),
                "rope_scaling must be none, linear or llama3, got 'yarn'");
    snprintf(text, sizeof text, "%srope_scaling = llama3\nrope_scaling_factor = 8\n"
             "rope_scaling_low_freq_factor = 2\nrope_scaling_high_freq_factor = 2\n"
             "rope_scaling_original_max_position_embeddings = 16\n", shape);
    CHECK_FAILS(config_load(put("bad.model", text), &c, err, sizeof err),
                "high_freq_factor must be above low_freq_factor");
    check_end();
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

// tie_embeddings in a model file: true ties, anything but true/false is refused.
static void test_tie_model_file(void) {
    check_begin("model_file_tie_embeddings");
    const char *shape = "dim = 64\nn_layers = 2\nn_heads = 4\nn_kv_heads = 2\nffn_dim = 96\n"
                        "vocab_size = 300\nmax_seq_len = 64\nrope_theta = 10000\nnorm_eps = 1e-5\n";
    char text[512];
    ModelConfig c;
    snprintf(text, sizeof text, "%stie_embeddings = true\n", shape);
    CHECK(config_load(put("tied.model", text), &c, err, sizeof err) && c.tie_embeddings,
          "tied model file: %s", err);
    CHECK(config_load(put("untied.model", shape), &c, err, sizeof err) && !c.tie_embeddings,
          "a model file without the key is untied: %s", err);
    snprintf(text, sizeof text, "%stie_embeddings = yes\n", shape);
    CHECK_FAILS(config_load(put("bad.model", text), &c, err, sizeof err),
                "tie_embeddings must be true or false, got 'yes'");
    check_end();
}

// A model file named without a folder ("m.model", in the working directory) is
// a file, not an unknown preset: a name with a dot or a slash is a path.
static void test_model_file_in_working_dir(void) {
    check_begin("model_file_named_without_a_folder");
    put("m.model", "dim = 64\nn_layers = 2\nn_heads = 4\nn_kv_heads = 2\nffn_dim = 128\n"
                   "vocab_size = 256\nmax_seq_len = 64\nrope_theta = 10000\nnorm_eps = 1e-5\n");
    char cwd[4096];
    ModelConfig c;
    if (getcwd(cwd, sizeof cwd) && chdir(tmpdir) == 0) {
        bool ok = config_load("m.model", &c, err, sizeof err);
        CHECK(ok && c.dim == 64 && c.n_layers == 2, "-c m.model: %s", err);
        CHECK_FAILS(config_load("m", &c, err, sizeof err), "unknown preset 'm'");
        CHECK(chdir(cwd) == 0, "cannot return to %s", cwd);
    } else CHECK(0, "cannot enter %s", tmpdir);
    check_end();
}

// tokenizer_config.json's string (or null) value of key.
static bool config_says(const char *dir, const char *key, const char *want) {
    char path[600];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_t *root = json_load_file(path, 0, NULL), *v = json_object_get(root, key);
    bool same = want ? json_is_string(v) && strcmp(json_string_value(v), want) == 0
                     : json_is_null(v);
    json_decref(root);
    return same;
}

static bool config_flag(const char *dir, const char *key, bool want) {
    char path[600];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_t *root = json_load_file(path, 0, NULL), *v = json_object_get(root, key);
    bool same = json_is_boolean(v) && json_is_true(v) == want;
    json_decref(root);
    return same;
}

static bool same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    for (int x = 0, y = 0; same && (x != EOF || y != EOF);) same = (x = fgetc(fa)) == (y = fgetc(fb));
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

// The tokenizer files of an export (hf_tokenizer_write), as transformers'
// AutoTokenizer reads them: a tokenizer.json (also one that starts with white
// space) beside tokenizer_class PreTrainedTokenizerFast, a SentencePiece model
// as tokenizer.model beside LlamaTokenizer; add_bos_token only with a BOS;
// the other kind's file of an earlier export removed.
static void test_tokenizer_files(void) {
    check_begin("hf_tokenizer_files_json_and_sentencepiece");
    char dir[200], file[300];
    snprintf(dir, sizeof dir, "%s/tok", tmpdir);
    CHECK(mkdir(dir, 0755) == 0, "mkdir %s", dir);
    const char *json = put("spaced.json", "\n \t{\"model\": {\"type\": \"BPE\"}}\n");
    HfTokenizerFiles t = {.file = json, .eos = "</s>", .max_length = 64};
    CHECK(hf_tokenizer_write(dir, &t, err, sizeof err), "%s", err);
    snprintf(file, sizeof file, "%s/tokenizer.json", dir);
    CHECK(same_file(file, json), "a tokenizer.json starting with white space is not tokenizer.json");
    CHECK(config_says(dir, "tokenizer_class", "PreTrainedTokenizerFast") &&
          config_says(dir, "bos_token", NULL) && config_says(dir, "eos_token", "</s>") &&
          config_flag(dir, "add_bos_token", false), "tokenizer_config.json of a tokenizer.json "
          "without BOS");
    t = (HfTokenizerFiles){.file = "inputs/tokenizer-spm.model", .bos = "<s>", .eos = "</s>",
                           .max_length = 64};
    CHECK(hf_tokenizer_write(dir, &t, err, sizeof err), "%s", err);
    snprintf(file, sizeof file, "%s/tokenizer.model", dir);
    CHECK(same_file(file, "inputs/tokenizer-spm.model"), "tokenizer.model not the model's copy");
    snprintf(file, sizeof file, "%s/tokenizer.json", dir);
    CHECK(access(file, F_OK) != 0, "the earlier export's tokenizer.json is still there");
    CHECK(config_says(dir, "tokenizer_class", "LlamaTokenizer") &&
          config_says(dir, "bos_token", "<s>") && config_flag(dir, "add_bos_token", true),
          "tokenizer_config.json of a SentencePiece model with BOS");
    check_end();
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/llama-hfconfig.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        printf("FAIL hf_config_setup: cannot make a temporary directory\n");
        return 1;
    }
    test_roundtrip();
    test_written_keys();
    test_released();
    test_refusals();
    test_write_refusals();
    test_rope_scaling_read();
    test_rope_scaling_refusals();
    test_rope_scaling_model_file();
    test_tied_presets();
    test_tie_model_file();
    test_model_file_in_working_dir();
    test_tokenizer_files();
    nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_exit_code();
}
