// Hugging Face config.json <-> ModelConfig: write/read round trip, the keys
// transformers needs, real released configs (transformers 4 and 5 layouts),
// and every refusal with its message.
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
        CHECK(!in.tie_word_embeddings && !strcmp(in.torch_dtype, "bfloat16"), "extras");
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
    HfConfig hf = {.bos_id = -1, .eos_id = 2, .torch_dtype = "float32"};
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
                  hf.tie_word_embeddings && !strcmp(hf.torch_dtype, "bfloat16")),
          "llama-3 fields");
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
    edited_fails("\"rope_scaling\": null", "\"rope_scaling\": {\"factor\": 8.0, \"rope_type\": "
                 "\"llama3\"}", "rope_scaling of type 'llama3' is not supported");
    edited_fails("\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"linear\", "
                 "\"factor\": 2.0}", "rope_scaling of type 'linear'");
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
    HfConfig hf = {.bos_id = -1, .eos_id = -1};
    config_load("tiny", &hf.model, err, sizeof err);
    hf.tie_word_embeddings = true;
    CHECK_FAILS(hf_config_write(tmp_path("w.json"), &hf, err, sizeof err), "output head is untied");
    hf.tie_word_embeddings = false;
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

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
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
    nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_exit_code();
}
