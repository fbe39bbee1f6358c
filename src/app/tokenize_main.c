// llama-tokenize: learns a byte-level BPE vocabulary (train), turns JSON Lines
// corpora into HDF5 token shards (encode, MPI-parallel), and shows what a
// shard holds (inspect).  SPMD: launch with mpirun/srun or run plainly.
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "comm/comm.h"
#include "core/cli.h"
#include "text/jsonl.h"
#include "tokenize/tokenize.h"
#include "core/util.h"

static const char *USAGE =
    "usage: llama-tokenize encode --tokenizer FILE|bytes --input FILE|DIR ... --output DIR\n"
    "                             [--val-fraction F] [--seed N] [--text-key KEY] [--eos TOKEN]\n"
    "                             [--skip-bad] [--max-record-bytes N] [--progress SECONDS]\n"
    "                             [--overwrite]\n"
    "       llama-tokenize train  --vocab-size N --input FILE|DIR ... --output tokenizer.json\n"
    "                             [--kind bpe|sentencepiece] [--special TOKEN,...]\n"
    "                             [--text-key KEY] [--skip-bad] [--overwrite]\n"
    "                             [--max-record-bytes N] [--progress SECONDS]\n"
    "       llama-tokenize inspect SHARD.h5 ...\n"
    "       llama-tokenize verify SHARD.h5|DIR ...\n"
    "       llama-tokenize bench --tokenizer FILE|bytes --input FILE|DIR ...\n"
    "       llama-tokenize --help\n";

// Printed between the usage and the options.
static const char *ABOUT =
    "\n"
    "Corpus: JSON Lines, one {\"text\": ..., \"meta\": {...}} object per line, plain (.jsonl)\n"
    "or zstd-compressed (.jsonl.zst).  A folder stands for its *.jsonl[.zst] and *.json[.zst]\n"
    "files and its subfolders' (depth first, in name order; hidden names passed over).\n"
    "Each document's source is meta.redpajama_set_name, else meta.source, else the\n"
    "file's name without extensions.  Empty documents are skipped and counted.\n"
    "\n"
    "encode   tokenizes every document and writes one HDF5 shard per source and split,\n"
    "         DIR/<source>.train.h5 and DIR/<source>.val.h5 (/tokens uint16 or uint32,\n"
    "         /doc_offsets, attributes).  A document is its tokens (after the BOS the\n"
    "         tokenizer's post-processor adds) and the end-of-text token.  Run it on any\n"
    "         number of ranks: the shards are identical whatever the rank count.\n"
    "train    learns a byte-level BPE vocabulary (GPT-2 regex, 256 byte tokens, most\n"
    "         frequent pair first, ties to the smallest ids) and writes a Hugging Face\n"
    "         tokenizer.json, with <|endoftext|> as a special token.  With --kind\n"
    "         sentencepiece: a LLaMA-style SentencePiece BPE model (<unk> <s> </s>, byte\n"
    "         fallback, split digits, no normalization) trained by the SentencePiece\n"
    "         library on the documents' lines, written to --output (\".model\" added\n"
    "         when missing).\n"
    "inspect  prints a shard's attributes and SHA-256 hashes of its datasets.\n"
    "verify   checks every block of 4096 tokens of every shard against the SHA-256 that\n"
    "         encode stored (/token_sha256), and exits 1 naming each damaged shard; on\n"
    "         N ranks each checks 1/N of the blocks.  (llama-train checks each block it\n"
    "         reads too.)\n"
    "bench    measures the tokenizer's speed on one core (corpus read into memory first).\n"
    "\n"
    "options\n";

// The options of encode, train and bench (see core/cli.h).
#define STR(f) .kind = CLI_STRING, .offset = offsetof(TokenizeOptions, f)
#define NUM(k, f) .kind = k, .offset = offsetof(TokenizeOptions, f)
#define LIST(f) .kind = CLI_LIST, .offset = offsetof(TokenizeOptions, f)

static const CliName KINDS[] = {{"bpe", TOKENIZER_KIND_BPE},
                                {"sentencepiece", TOKENIZER_KIND_SENTENCEPIECE}, {NULL, 0}};

static const CliOption options[] = {
    {"tokenizer", 0, STR(tokenizer), "a Hugging Face tokenizer.json of the byte-level BPE kind "
     "(GPT-2, LLaMA-3), a SentencePiece tokenizer.model (LLaMA-1/2, Mistral), or 'bytes': one "
     "token per byte (vocab 256)", .arg = "FILE|bytes"},
    {"input", 0, LIST(inputs), "corpus files or folders (one or more; may be repeated)",
     .arg = "FILE|DIR ...", .greedy = true},
    {"output", 0, STR(output), "encode: the folder for the shards (made when missing; one "
     "holding *.h5 shards is refused); train: the tokenizer.json (or tokenizer.model) to "
     "write", .arg = "PATH"},
    {"overwrite", 0, NUM(CLI_FLAG, overwrite),
     "encode: replace the token shards already in --output (and a failed run's *.h5.tmp) "
     "once every new shard is written; any other *.h5 there is refused, nothing deleted; "
     "train: replace an existing --output file"},
    {"val-fraction", 0, NUM(CLI_DOUBLE, val_fraction), "encode: the share of documents held out "
     "for validation, chosen by a hash of the document's text and --seed (default 0.01; 0: no "
     "validation shards)", .arg = "F", .bounds = CLI_BELOW, .min = 0, .max = 1},
    {"seed", 0, NUM(CLI_UINT64, seed), "encode: the seed of that choice (default 0)"},
    {"text-key", 0, STR(text_key), "the JSON field holding the document (default text)",
     .arg = "KEY"},
    {"eos", 0, STR(eos), "the end-of-text token after each document (default: the tokenizer's "
     "<|endoftext|>, <|end_of_text|>, </s>, ...)", .arg = "TOKEN"},
    {"skip-bad", 0, NUM(CLI_FLAG, skip_bad), "skip records that are not usable (not JSON, no "
     "text field, invalid UTF-8, too long) and count them, instead of stopping"},
    {"max-record-bytes", 0, NUM(CLI_INT64, max_record_bytes),
     "longest line accepted (default 64 MiB)", .bounds = CLI_AT_LEAST, .min = 1},
    {"progress", 0, NUM(CLI_DOUBLE, progress_every), "seconds between progress lines when the "
     "output is not a terminal (default 10; 0: none)", .arg = "SECONDS",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"vocab-size", 0, NUM(CLI_INT, vocab_size), "train: tokens in all, special tokens included",
     .bounds = CLI_BETWEEN, .min = 1, .max = 1 << 24},
    {"special", 0, LIST(specials), "train: more special tokens after <|endoftext|>",
     .arg = "TOKEN,...", .sep = ','},
    {"kind", 0, NUM(CLI_CHOICE, kind), "train: bpe (byte-level BPE, a tokenizer.json; the "
     "default) or sentencepiece (a LLaMA-style SentencePiece BPE tokenizer.model)",
     .names = KINDS},
};
#define N_OPTIONS (int)(sizeof options / sizeof options[0])
static const CliTable table = {options, N_OPTIONS, NULL, NULL, NULL};

// The options each corpus command reads (the others it refuses, by name:
// "bench does not take the option '--output'").
static const struct {
    const char *command;
    const char *options;   // " name name ... "
} COMMAND_OPTIONS[] = {
    {"encode", " tokenizer input output overwrite val-fraction seed text-key eos skip-bad "
               "max-record-bytes progress "},
    {"train", " input output overwrite text-key skip-bad max-record-bytes progress vocab-size "
              "special kind "},
    {"bench", " tokenizer input text-key skip-bad max-record-bytes "},
};

// The table of the options command takes (inspect and verify: none, shards
// only); its options are copied into kept.
static CliTable command_table(const char *command, CliOption kept[N_OPTIONS]) {
    const char *names = "";
    for (size_t c = 0; c < sizeof COMMAND_OPTIONS / sizeof COMMAND_OPTIONS[0]; c++)
        if (strcmp(command, COMMAND_OPTIONS[c].command) == 0) names = COMMAND_OPTIONS[c].options;
    int n = 0;
    for (int i = 0; i < N_OPTIONS; i++) {
        char word[64];
        snprintf(word, sizeof word, " %s ", options[i].name);
        if (strstr(names, word)) kept[n++] = options[i];
    }
    return (CliTable){kept, n, NULL, command, &table};
}

static void print_help(void) {
    if (util_world_rank() != 0) return;
    printf("%s%s", USAGE, ABOUT);
    cli_print_options(&table, 24, stdout);
    printf("  %-24s %s\n", "-h, --help", "this text");
}

static void usage_error(const char *fmt, const char *arg) {
    char msg[1024];
    snprintf(msg, sizeof msg, fmt, arg);
    fatal_usage("%s (see llama-tokenize --help)", msg);
}

// What is wrong with the options of encode or train (NULL: nothing), in buf.
static const char *options_problem(const TokenizeOptions *o, const char *command, char *buf,
                                   size_t len) {
    bool encode = strcmp(command, "encode") == 0;
    const char *need = o->inputs.n == 0 ? "--input FILE|DIR ..."
                     : !o->output ? (encode ? "--output DIR" : "--output tokenizer.json")
                     : encode && !o->tokenizer ? "--tokenizer FILE|bytes"
                     : !encode && o->vocab_size == 0 ? "--vocab-size N" : NULL;
    if (!need) return NULL;
    snprintf(buf, len, "%s needs %s", command, need);
    return buf;
}

// A usage problem found after parsing: agreed first (on some ranks only, it
// ends them all), then reported.
static void refuse_if(const char *why) {
    agree_on_choice(why != NULL, "a bad command line");
    if (why) usage_error("%s", why);
}

// inspect and verify: one or more shards (or folders of them).
static void run_on_shards(const TokenizeOptions *o, const char *command) {
    bool inspect = strcmp(command, "inspect") == 0;
    refuse_if(o->shards.n > 0 ? NULL : inspect ? "inspect needs one or more shard files"
                                               : "verify needs one or more shard files or folders");
    if (inspect) tokenize_inspect(o);
    else tokenize_verify(o);
}

static void run_on_corpus(const TokenizeOptions *o, const char *command) {
    char buf[256];
    if (strcmp(command, "bench") == 0) {
        refuse_if(o->tokenizer && o->inputs.n > 0 ? NULL
                  : "bench needs --tokenizer FILE|bytes and --input FILE|DIR ...");
        tokenize_bench(o);
        return;
    }
    refuse_if(options_problem(o, command, buf, sizeof buf));
    if (strcmp(command, "encode") == 0) tokenize_encode(o);
    else tokenize_train(o);
}

static const char *const SHARD_COMMANDS[] = {"inspect", "verify", NULL};
static const char *const CORPUS_COMMANDS[] = {"encode", "train", "bench", NULL};

static bool is_command(const char *s, const char *const *names) {
    for (; *names; names++)
        if (strcmp(s, *names) == 0) return true;
    return false;
}

// 1, 2, ...: the command's place in the lists above.
static int command_number(const char *command) {
    int n = 1;
    for (const char *const *c = SHARD_COMMANDS; *c; c++, n++)
        if (strcmp(command, *c) == 0) return n;
    for (const char *const *c = CORPUS_COMMANDS; *c; c++, n++)
        if (strcmp(command, *c) == 0) return n;
    return n;
}

static int run(int argc, char **argv) {
    const char *command = argc >= 2 ? argv[1] : "";
    bool help = !strcmp(command, "-h") || !strcmp(command, "--help");
    bool shards = is_command(command, SHARD_COMMANDS);
    // Ranks given different commands (an unknown one or none included) would
    // wait for each other in different places: agreed before anything else.
    agree_on_choice(help ? 0 : argc < 2 ? -1 : command_number(command), "a different command");
    if (argc < 2) usage_error("%s", "a command is needed: encode, train, inspect, verify or bench");
    if (!help && !shards && !is_command(command, CORPUS_COMMANDS))
        usage_error("unknown command '%s' (encode, train, inspect, verify or bench)", command);
    TokenizeOptions o = {.val_fraction = 0.01, .progress_every = 10,
                         .max_record_bytes = (int64_t)JSONL_DEFAULT_MAX_RECORD_BYTES};
    char err[1024];
    CliOption kept[N_OPTIONS];
    CliTable taken = command_table(command, kept);
    bool parsed = help || cli_parse(&taken, &o, argc, argv, 2, shards ? &o.shards : NULL, &help,
                                    err, sizeof err);
    agree_on_choice(!parsed, "a bad command line");   // a usage error on some ranks only
    if (!parsed) usage_error("%s", err);
    agree_on_choice(help, "--help");
    if (help) print_help();
    else if (shards) run_on_shards(&o, command);
    else run_on_corpus(&o, command);
    return 0;
}

// inspect and --help run on one process and need no MPI (whose start-up
// costs a good part of a second), unless a launcher started several: then
// every rank starts MPI, so that ranks given different commands agree on
// what to do instead of some waiting in MPI's start-up for the others.
static bool needs_mpi(int argc, char **argv) {
    return comm_launched_ranks() > 1 ||
           (argc >= 2 && (strcmp(argv[1], "encode") == 0 || strcmp(argv[1], "train") == 0 ||
                          strcmp(argv[1], "verify") == 0));
}

int main(int argc, char **argv) {
    bool mpi = needs_mpi(argc, argv);
    if (mpi) comm_world_start(&argc, &argv);
    util_set_program("llama-tokenize");
    int rc = run(argc, argv);
    if (mpi) comm_world_end();
    return rc;
}
