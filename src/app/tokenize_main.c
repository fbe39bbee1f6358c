// llama-tokenize: learns a byte-level BPE vocabulary (train), turns JSON Lines
// corpora into HDF5 token shards (encode, MPI-parallel), and shows what a
// shard holds (inspect).  SPMD: launch with mpirun/srun or run plainly.
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/jsonl.h"
#include "tokenize/tokenize.h"
#include "core/util.h"

static const char *USAGE =
    "usage: llama-tokenize encode --tokenizer FILE|bytes --input FILE|DIR ... --output DIR\n"
    "                             [--val-fraction F] [--seed N] [--text-key KEY] [--eos TOKEN]\n"
    "                             [--skip-bad] [--max-record-bytes N] [--progress SECONDS]\n"
    "                             [--overwrite]\n"
    "       llama-tokenize train  --vocab-size N --input FILE|DIR ... --output tokenizer.json\n"
    "                             [--special TOKEN,...] [--text-key KEY] [--skip-bad]\n"
    "                             [--max-record-bytes N] [--progress SECONDS]\n"
    "       llama-tokenize inspect SHARD.h5 ...\n"
    "       llama-tokenize verify SHARD.h5|DIR ...\n"
    "       llama-tokenize bench --tokenizer FILE|bytes --input FILE|DIR ...\n"
    "       llama-tokenize --help\n";

static const char *HELP =
    "\n"
    "Corpus: JSON Lines, one {\"text\": ..., \"meta\": {...}} object per line, plain (.jsonl)\n"
    "or zstd-compressed (.jsonl.zst).  A folder stands for its *.jsonl[.zst] files in name\n"
    "order.  Each document's source is meta.redpajama_set_name, else meta.source, else the\n"
    "file's name without extensions.  Empty documents are skipped and counted.\n"
    "\n"
    "encode   tokenizes every document and writes one HDF5 shard per source and split,\n"
    "         DIR/<source>.train.h5 and DIR/<source>.val.h5 (/tokens uint16 or uint32,\n"
    "         /doc_offsets, attributes).  A document is its tokens (after the BOS the\n"
    "         tokenizer's post-processor adds) and the end-of-text token.  Run it on any\n"
    "         number of ranks: the shards are identical whatever the rank count.\n"
    "train    learns a byte-level BPE vocabulary (GPT-2 regex, 256 byte tokens, most\n"
    "         frequent pair first, ties to the smallest ids) and writes a Hugging Face\n"
    "         tokenizer.json, with <|endoftext|> as a special token.\n"
    "inspect  prints a shard's attributes and SHA-256 hashes of its datasets.\n"
    "verify   checks every block of 4096 tokens of every shard against the SHA-256 that\n"
    "         encode stored (/token_sha256), and exits 1 naming each damaged shard; on\n"
    "         N ranks each checks 1/N of the blocks.  (llama-train checks each block it\n"
    "         reads too.)\n"
    "bench    measures the tokenizer's speed on one core (corpus read into memory first).\n"
    "\n"
    "options\n"
    "  --tokenizer FILE|bytes   a Hugging Face tokenizer.json of the byte-level BPE kind\n"
    "                           (GPT-2, LLaMA-3), or 'bytes': one token per byte (vocab 256)\n"
    "  --input FILE|DIR ...     corpus files or folders (one or more; may be repeated)\n"
    "  --output PATH            encode: the folder for the shards (made when missing;\n"
    "                           one holding *.h5 shards is refused); train: the\n"
    "                           tokenizer.json to write\n"
    "  --overwrite              encode: delete the *.h5 shards already in --output first\n"
    "  --val-fraction F         encode: the share of documents held out for validation,\n"
    "                           chosen by a hash of the document's text and --seed\n"
    "                           (default 0.01; 0: no validation shards)\n"
    "  --seed N                 encode: the seed of that choice (default 0)\n"
    "  --text-key KEY           the JSON field holding the document (default text)\n"
    "  --eos TOKEN              the end-of-text token after each document (default: the\n"
    "                           tokenizer's <|endoftext|>, <|end_of_text|>, </s>, ...)\n"
    "  --skip-bad               skip records that are not usable (not JSON, no text field,\n"
    "                           invalid UTF-8, too long) and count them, instead of stopping\n"
    "  --max-record-bytes N     longest line accepted (default 64 MiB)\n"
    "  --progress SECONDS       seconds between progress lines when the output is not a\n"
    "                           terminal (default 10; 0: none)\n"
    "  --vocab-size N           train: tokens in all, special tokens included\n"
    "  --special TOKEN,...      train: more special tokens after <|endoftext|>\n"
    "  -h, --help               this text\n";

static void usage_error(const char *fmt, const char *arg) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, arg);
    fatal_all("%s (see llama-tokenize --help)", msg);
}

static void push(char ***list, int *n, const char *s) {
    *list = xrealloc(*list, (size_t)(*n + 1) * sizeof **list);
    (*list)[(*n)++] = xstrdup(s);
}

// The value of option argv[*i] ("--opt value" or "--opt=value").
static const char *value_of(int argc, char **argv, int *i) {
    const char *eq = strchr(argv[*i], '=');
    if (eq) return eq + 1;
    if (*i + 1 >= argc) usage_error("option %s needs a value", argv[*i]);
    return argv[++*i];
}

static bool is_option(const char *arg, const char *name) {
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == 0 || arg[n] == '=');
}

static void split_commas(const char *s, char ***list, int *n) {
    char *copy = xstrdup(s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) push(list, n, t);
    free(copy);
}

static void parse_number(const char *opt, const char *v, int64_t lo, int64_t *out) {
    if (!parse_int64(v, out) || *out < lo) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s needs a whole number >= %lld, not '%%s'", opt,
                 (long long)lo);
        usage_error(msg, v);
    }
}

static void parse_option(TokenizeOptions *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    int64_t n;
    if (is_option(a, "--input")) {
        const char *v = value_of(argc, argv, i);
        push(&o->inputs, &o->n_inputs, v);
        while (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0)
            push(&o->inputs, &o->n_inputs, argv[++*i]);
    } else if (is_option(a, "--tokenizer")) o->tokenizer = value_of(argc, argv, i);
    else if (is_option(a, "--output")) o->output = value_of(argc, argv, i);
    else if (is_option(a, "--text-key")) o->text_key = value_of(argc, argv, i);
    else if (is_option(a, "--eos")) o->eos = value_of(argc, argv, i);
    else if (is_option(a, "--skip-bad") && !strchr(a, '=')) o->skip_bad = true;
    else if (is_option(a, "--overwrite") && !strchr(a, '=')) o->overwrite = true;
    else if (is_option(a, "--special")) split_commas(value_of(argc, argv, i), &o->specials,
                                                      &o->n_specials);
    else if (is_option(a, "--seed")) parse_number(a, value_of(argc, argv, i), INT64_MIN, &o->seed);
    else if (is_option(a, "--max-record-bytes")) {
        parse_number("--max-record-bytes", value_of(argc, argv, i), 1, &o->max_record_bytes);
    } else if (is_option(a, "--vocab-size")) {
        parse_number("--vocab-size", value_of(argc, argv, i), 1, &n);
        if (n > 1 << 24) usage_error("--vocab-size %s is too large (at most 16777216)", argv[*i]);
        o->vocab_size = (int)n;
    } else if (is_option(a, "--val-fraction")) {
        const char *v = value_of(argc, argv, i);
        if (!parse_double(v, &o->val_fraction) || o->val_fraction < 0 || o->val_fraction >= 1)
            usage_error("--val-fraction needs a number in [0, 1), not '%s'", v);
    } else if (is_option(a, "--progress")) {
        const char *v = value_of(argc, argv, i);
        if (!parse_double(v, &o->progress_every) || o->progress_every < 0)
            usage_error("--progress needs seconds >= 0, not '%s'", v);
    } else {
        usage_error("unknown option '%s'", a);
    }
}

static void require(const char *value, const char *what, const char *command) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s needs %s", command, what);
    if (!value) usage_error("%s", msg);
}

static void check_options(const TokenizeOptions *o, const char *command) {
    bool encode = strcmp(command, "encode") == 0;
    if (o->n_inputs == 0) usage_error("%s needs --input FILE|DIR ...", command);
    require(o->output, encode ? "--output DIR" : "--output tokenizer.json", command);
    if (encode) require(o->tokenizer, "--tokenizer FILE|bytes", command);
    if (encode && (o->vocab_size || o->n_specials))
        usage_error("%s", "--vocab-size and --special belong to train, not encode");
    if (!encode && o->vocab_size == 0) usage_error("%s", "train needs --vocab-size N");
    if (!encode && (o->tokenizer || o->eos || o->overwrite))
        usage_error("%s", "--tokenizer, --eos and --overwrite belong to encode, not train");
}

static int run(int argc, char **argv) {
    if (argc < 2) usage_error("%s", "a command is needed: encode, train, inspect, verify or bench");
    const char *command = argv[1];
    if (strcmp(command, "-h") == 0 || strcmp(command, "--help") == 0) {
        if (util_world_rank() == 0) printf("%s%s", USAGE, HELP);
        return 0;
    }
    TokenizeOptions o = {.val_fraction = 0.01, .progress_every = 10,
                         .max_record_bytes = (int64_t)JSONL_DEFAULT_MAX_RECORD_BYTES};
    if (strcmp(command, "inspect") == 0) {
        for (int i = 2; i < argc; i++) push(&o.shards, &o.n_shards, argv[i]);
        if (o.n_shards == 0) usage_error("%s", "inspect needs one or more shard files");
        tokenize_inspect(&o);
        return 0;
    }
    if (strcmp(command, "verify") == 0) {
        for (int i = 2; i < argc; i++) push(&o.shards, &o.n_shards, argv[i]);
        if (o.n_shards == 0) usage_error("%s", "verify needs one or more shard files or folders");
        tokenize_verify(&o);
        return 0;
    }
    bool bench = strcmp(command, "bench") == 0;
    if (strcmp(command, "encode") != 0 && strcmp(command, "train") != 0 && !bench)
        usage_error("unknown command '%s' (encode, train, inspect, verify or bench)", command);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            if (util_world_rank() == 0) printf("%s%s", USAGE, HELP);
            return 0;
        }
        parse_option(&o, argc, argv, &i);
    }
    if (bench) {
        if (!o.tokenizer || o.n_inputs == 0)
            usage_error("%s", "bench needs --tokenizer FILE|bytes and --input FILE|DIR ...");
        tokenize_bench(&o);
        return 0;
    }
    check_options(&o, command);
    if (strcmp(command, "encode") == 0) tokenize_encode(&o);
    else tokenize_train(&o);
    return 0;
}

// inspect and --help run on one process and need no MPI (whose start-up
// costs a good part of a second).
static bool needs_mpi(int argc, char **argv) {
    return argc >= 2 && (strcmp(argv[1], "encode") == 0 || strcmp(argv[1], "train") == 0 ||
                         strcmp(argv[1], "verify") == 0);
}

int main(int argc, char **argv) {
    bool mpi = needs_mpi(argc, argv);
    if (mpi) MPI_Init(&argc, &argv);
    util_set_program("llama-tokenize");
    int rc = run(argc, argv);
    if (mpi) MPI_Finalize();
    return rc;
}
