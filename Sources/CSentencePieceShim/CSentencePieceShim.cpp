// The bridge: every entry point catches everything; no C++ type escapes.
#include "CSentencePieceShim.h"
#include <sentencepiece_processor.h>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

struct yy_spm {
    sentencepiece::SentencePieceProcessor sp;
    bool add_dummy_prefix = true;
};

static void put_err(char *err, size_t cap, const std::string &msg) {
    if (!err || cap == 0) return;
    size_t n = msg.size() < cap - 1 ? msg.size() : cap - 1;
    std::memcpy(err, msg.data(), n);
    err[n] = '\0';
}

extern "C" int yy_spm_load(const char *path, yy_spm **out, char *err, size_t err_cap) {
    *out = nullptr;
    try {
        auto *h = new yy_spm();
        auto st = h->sp.Load(path);
        if (!st.ok()) {
            put_err(err, err_cap, st.ToString());
            delete h;
            return YY_SPM_ERROR;
        }
        // Encode a lone "a": a leading "▁" piece (or "▁a") means a dummy prefix was added.
        std::vector<std::string> pieces;
        h->sp.Encode("a", &pieces).IgnoreError();
        h->add_dummy_prefix = !pieces.empty() && pieces[0].rfind("\xE2\x96\x81", 0) == 0;
        *out = h;
        return YY_SPM_OK;
    } catch (const std::exception &e) {
        put_err(err, err_cap, e.what());
    } catch (...) {
        put_err(err, err_cap, "unknown C++ exception");
    }
    return YY_SPM_ERROR;
}

extern "C" void yy_spm_free(yy_spm *h) { delete h; }

extern "C" int yy_spm_piece_size(const yy_spm *h) { return h->sp.GetPieceSize(); }
extern "C" int yy_spm_unk_id(const yy_spm *h) { return h->sp.unk_id(); }
extern "C" int yy_spm_bos_id(const yy_spm *h) { return h->sp.bos_id(); }
extern "C" int yy_spm_eos_id(const yy_spm *h) { return h->sp.eos_id(); }
extern "C" int yy_spm_pad_id(const yy_spm *h) { return h->sp.pad_id(); }
extern "C" int yy_spm_add_dummy_prefix(const yy_spm *h) { return h->add_dummy_prefix ? 1 : 0; }

extern "C" int yy_spm_piece_type(const yy_spm *h, int id) {
    try {
        if (id < 0 || id >= h->sp.GetPieceSize()) return 0;
        if (h->sp.IsUnknown(id)) return YY_SPM_UNKNOWN;
        if (h->sp.IsControl(id)) return YY_SPM_CONTROL;
        if (h->sp.IsByte(id)) return YY_SPM_BYTE;
        if (h->sp.IsUnused(id)) return YY_SPM_UNUSED;
        // The public API has no IsUserDefined; a user-defined piece encodes to itself alone.
        const std::string &piece = h->sp.IdToPiece(id);
        std::vector<int> ids;
        if (h->sp.Encode(piece, &ids).ok()) {
            for (int x : ids) if (x == id) return YY_SPM_USER_DEFINED;
        }
        return YY_SPM_NORMAL;
    } catch (...) {
        return 0;
    }
}

extern "C" int yy_spm_encode(const yy_spm *h, const char *text, size_t len,
                             int32_t **ids, size_t *n, char *err, size_t err_cap) {
    *ids = nullptr;
    *n = 0;
    try {
        std::vector<int> v;
        auto st = h->sp.Encode(std::string(text, len), &v);
        if (!st.ok()) {
            put_err(err, err_cap, st.ToString());
            return YY_SPM_ERROR;
        }
        auto *buf = static_cast<int32_t *>(std::malloc((v.size() ? v.size() : 1) * sizeof(int32_t)));
        if (!buf) { put_err(err, err_cap, "out of memory"); return YY_SPM_ERROR; }
        for (size_t i = 0; i < v.size(); i++) buf[i] = v[i];
        *ids = buf;
        *n = v.size();
        return YY_SPM_OK;
    } catch (const std::exception &e) {
        put_err(err, err_cap, e.what());
    } catch (...) {
        put_err(err, err_cap, "unknown C++ exception");
    }
    return YY_SPM_ERROR;
}

extern "C" int yy_spm_decode(const yy_spm *h, const int32_t *ids, size_t n,
                             char **text, size_t *len, char *err, size_t err_cap) {
    *text = nullptr;
    *len = 0;
    try {
        std::vector<int> v(ids, ids + n);
        for (int x : v) {
            if (x < 0 || x >= h->sp.GetPieceSize()) {
                put_err(err, err_cap, "id " + std::to_string(x) + " is outside the vocabulary of " +
                                          std::to_string(h->sp.GetPieceSize()));
                return YY_SPM_ERROR;
            }
        }
        std::string out;
        auto st = h->sp.Decode(v, &out);
        if (!st.ok()) {
            put_err(err, err_cap, st.ToString());
            return YY_SPM_ERROR;
        }
        auto *buf = static_cast<char *>(std::malloc(out.size() ? out.size() : 1));
        if (!buf) { put_err(err, err_cap, "out of memory"); return YY_SPM_ERROR; }
        std::memcpy(buf, out.data(), out.size());
        *text = buf;
        *len = out.size();
        return YY_SPM_OK;
    } catch (const std::exception &e) {
        put_err(err, err_cap, e.what());
    } catch (...) {
        put_err(err, err_cap, "unknown C++ exception");
    }
    return YY_SPM_ERROR;
}

extern "C" int yy_spm_id_to_piece(const yy_spm *h, int id, char **piece, size_t *len) {
    *piece = nullptr;
    *len = 0;
    try {
        if (id < 0 || id >= h->sp.GetPieceSize()) return YY_SPM_ERROR;
        const std::string &p = h->sp.IdToPiece(id);
        auto *buf = static_cast<char *>(std::malloc(p.size() ? p.size() : 1));
        if (!buf) return YY_SPM_ERROR;
        std::memcpy(buf, p.data(), p.size());
        *piece = buf;
        *len = p.size();
        return YY_SPM_OK;
    } catch (...) {
        return YY_SPM_ERROR;
    }
}

extern "C" int yy_spm_piece_to_id(const yy_spm *h, const char *piece, size_t len) {
    try {
        return h->sp.PieceToId(std::string(piece, len));
    } catch (...) {
        return h->sp.unk_id();
    }
}

extern "C" void yy_spm_free_buffer(void *p) { std::free(p); }
