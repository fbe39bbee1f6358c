// The SentencePiece library behind a C API (see sentencepiece_model.h).
// Every entry point catches what the library (or the standard library)
// throws and turns it into an error message.
#include "tokenizer/sentencepiece_model.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace spm = sentencepiece;

struct SpmModel {
    spm::SentencePieceProcessor sp;
    std::string name;
    std::vector<int> scratch;  // the ids of the last spm_encode
};

static void set_err(char *err, int err_len, const std::string &msg) {
    if (err && err_len > 0) std::snprintf(err, (size_t)err_len, "%s", msg.c_str());
}

// What a caught exception says.
static std::string what_of(std::exception_ptr p) {
    try {
        std::rethrow_exception(p);
    } catch (const std::exception &e) {
        return e.what();
    } catch (...) {
        return "an unknown C++ exception";
    }
}

extern "C" bool spm_looks_like_model(const void *data, size_t len) {
    return len > 0 && static_cast<const unsigned char *>(data)[0] == 0x0A;
}

// ---- loading ------------------------------------------------------------------

extern "C" SpmModel *spm_load(const void *data, size_t len, const char *name, char *err,
                              int err_len) {
    SpmModel *m = nullptr;
    try {
        m = new SpmModel;
        m->name = name;
        auto st = m->sp.LoadFromSerializedProto(
            std::string_view(static_cast<const char *>(data), len));
        if (st.ok() && m->sp.GetPieceSize() > 0) return m;
        std::string why = st.ok() ? "it has no pieces" : st.ToString();
        if (why.find("ParseFromArray") != std::string::npos)
            why = "it does not parse: truncated, or another kind of file";
        set_err(err, err_len, std::string(name) + ": not a usable SentencePiece model (" + why +
                "); give a SentencePiece tokenizer.model, a tokenizer.json or 'bytes'");
    } catch (...) {
        set_err(err, err_len, std::string(name) + ": cannot load the SentencePiece model: " +
                what_of(std::current_exception()));
    }
    delete m;
    return nullptr;
}

extern "C" void spm_free(SpmModel *m) { delete m; }

// ---- vocabulary ---------------------------------------------------------------

extern "C" int spm_vocab_size(const SpmModel *m) { return m->sp.GetPieceSize(); }
extern "C" int spm_bos_id(const SpmModel *m) { return m->sp.bos_id(); }
extern "C" int spm_eos_id(const SpmModel *m) { return m->sp.eos_id(); }
extern "C" int spm_unk_id(const SpmModel *m) { return m->sp.unk_id(); }
extern "C" int spm_pad_id(const SpmModel *m) { return m->sp.pad_id(); }

extern "C" const char *spm_piece(const SpmModel *m, int id) {
    if (id < 0 || id >= m->sp.GetPieceSize()) return nullptr;
    try {
        return m->sp.IdToPiece(id).c_str();
    } catch (...) {
        return nullptr;
    }
}

// PieceToId answers the unknown piece's id for text that is no piece.
extern "C" int spm_piece_id(const SpmModel *m, const char *piece, size_t len) {
    try {
        std::string_view want(piece, len);
        int id = m->sp.PieceToId(want);
        return id >= 0 && id < m->sp.GetPieceSize() && m->sp.IdToPiece(id) == want ? id : -1;
    } catch (...) {
        return -1;
    }
}

// ---- encode / decode ----------------------------------------------------------

extern "C" const int *spm_encode(SpmModel *m, const char *text, size_t len, size_t *n,
                                 char *err, int err_len) {
    try {
        m->scratch.clear();
        auto st = m->sp.Encode(std::string_view(text, len), &m->scratch);
        if (st.ok()) {
            *n = m->scratch.size();
            return m->scratch.data();
        }
        set_err(err, err_len, m->name + ": SentencePiece cannot encode a text: " + st.ToString());
    } catch (...) {
        set_err(err, err_len, m->name + ": SentencePiece cannot encode a text: " +
                what_of(std::current_exception()));
    }
    return nullptr;
}

extern "C" char *spm_decode(const SpmModel *m, const uint32_t *ids, size_t n, size_t *len,
                            char *err, int err_len) {
    try {
        std::vector<int> in;
        in.reserve(n);
        for (size_t i = 0; i < n; i++)
            if (ids[i] < (uint32_t)m->sp.GetPieceSize()) in.push_back((int)ids[i]);
        std::string text;
        auto st = m->sp.Decode(in, &text);
        if (st.ok()) {
            char *out = static_cast<char *>(std::malloc(text.size() + 1));
            if (!out) throw std::bad_alloc();
            std::memcpy(out, text.data(), text.size());
            out[text.size()] = 0;
            *len = text.size();
            return out;
        }
        set_err(err, err_len, m->name + ": SentencePiece cannot decode: " + st.ToString());
    } catch (...) {
        set_err(err, err_len, m->name + ": SentencePiece cannot decode: " +
                what_of(std::current_exception()));
    }
    return nullptr;
}

// ---- training -----------------------------------------------------------------

namespace {

// The non-empty lines of a text, one after the other.
class Lines : public spm::SentenceIterator {
  public:
    Lines(const char *text, size_t len) : at_(text), end_(text + len) { Next(); }
    bool done() const override { return done_; }
    void Next() override {
        while (at_ < end_) {
            const char *nl = static_cast<const char *>(std::memchr(at_, '\n', end_ - at_));
            const char *stop = nl ? nl : end_;
            line_.assign(at_, stop - at_);
            at_ = nl ? nl + 1 : end_;
            if (!line_.empty()) return;
        }
        done_ = true;
    }
    const std::string &value() const override { return line_; }
    spm::util::Status status() const override { return spm::util::Status(); }

  private:
    const char *at_, *end_;
    std::string line_;
    bool done_ = false;
};

// LLaMA's trainer settings (its tokenizer.model's trainer_spec), all
// sentences used (no sampling), one thread.
std::unordered_map<std::string, std::string> llama_bpe_spec(int vocab_size) {
    return {{"model_type", "bpe"}, {"vocab_size", std::to_string(vocab_size)},
            {"character_coverage", "0.99995"}, {"split_digits", "true"},
            {"byte_fallback", "true"}, {"allow_whitespace_only_pieces", "true"},
            {"remove_extra_whitespaces", "false"}, {"normalization_rule_name", "identity"},
            {"add_dummy_prefix", "true"}, {"unk_id", "0"}, {"bos_id", "1"}, {"eos_id", "2"},
            {"pad_id", "-1"}, {"max_sentencepiece_length", "16"},
            {"max_sentence_length", "4192"}, {"input_sentence_size", "0"},
            {"num_threads", "1"}, {"minloglevel", "1"}};
}

bool write_file(const std::string &bytes, const char *path, char *err, int err_len) {
    std::string tmp = std::string(path) + ".tmp";
    FILE *f = std::fopen(tmp.c_str(), "wb");
    bool ok = f && std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    if (f && std::fclose(f) != 0) ok = false;
    if (ok && std::rename(tmp.c_str(), path) != 0) ok = false;
    if (ok) return true;
    set_err(err, err_len, std::string("cannot write the SentencePiece model '") + path + "': " +
            std::strerror(errno) + " (is the folder there and writable?)");
    std::remove(tmp.c_str());
    return false;
}

}  // namespace

extern "C" bool spm_train_bpe(const char *text, size_t len, int vocab_size, const char *path,
                              char *err, int err_len) {
    try {
        Lines lines(text, len);
        std::string model;
        auto st = spm::SentencePieceTrainer::Train(llama_bpe_spec(vocab_size), &lines, &model);
        if (st.ok()) return write_file(model, path, err, err_len);
        std::string why = st.ToString();
        // The library's advice names its own flag, which llama-tokenize does not have.
        if (why.find("Vocabulary size is smaller than required_chars") != std::string::npos)
            why += " (llama-tokenize keeps character_coverage at 0.99995: give a --vocab-size of "
                   "at least the second number above)";
        set_err(err, err_len, std::string(path) + ": SentencePiece training failed: " + why);
    } catch (...) {
        set_err(err, err_len, std::string(path) + ": SentencePiece training failed: " +
                what_of(std::current_exception()));
    }
    return false;
}
