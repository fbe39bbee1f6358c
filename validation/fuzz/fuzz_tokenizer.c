// libFuzzer harness: the tokenizer.json loader (io/tokenizer/tokenizer.c with the BPE
// model, pre-tokenizer, added tokens and post-processor it reads).  The input
// is a tokenizer.json; one that loads must encode a fixed text and the first
// bytes of the input itself with every id below its vocabulary size (the
// shards' promise) and decode them again.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "tokenizer/tokenizer.h"

static const char TEXT[] = "Hello world! <|endoftext|> it's  12345 \xe4\xb8\xad\xe6\x96\x87 "
                           "\xf0\x9f\x98\x80\n\tx</s> \xff\xfe";

static void encode_checked(Tokenizer *t, const char *text, size_t len) {
    TokenIds ids = {0};
    tokenizer_encode_document(t, text, len, &ids);
    for (size_t i = 0; i < ids.len; i++)
        if ((int64_t)ids.ids[i] >= tokenizer_vocab_size(t)) abort();  // an id out of the vocab
    size_t n;
    free(tokenizer_decode(t, ids.ids, ids.len, &n));
    token_ids_free(&ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, "tokenizer.json");
    char err[1024];
    Tokenizer *t = tokenizer_load(path, err, sizeof err);
    if (!t) return 0;
    encode_checked(t, TEXT, sizeof TEXT - 1);
    encode_checked(t, (const char *)data, size < 256 ? size : 256);
    tokenizer_set_eos(t, "<|endoftext|>", err, sizeof err);
    tokenizer_free(t);
    return 0;
}
