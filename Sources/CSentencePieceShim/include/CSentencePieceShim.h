// C API over libsentencepiece's C++ SentencePieceProcessor.
// Why: Swift's C++ interop cannot import SentencePieceProcessor. This bridge keeps an opaque
// handle, returns status codes, and never lets a C++ exception cross into Swift.
#ifndef YANYI_CSENTENCEPIECESHIM_H
#define YANYI_CSENTENCEPIECESHIM_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct yy_spm yy_spm;

enum {
    YY_SPM_OK = 0,
    YY_SPM_ERROR = 1,      // message in the error buffer
};

// Piece types, as in sentencepiece_model.proto.
enum {
    YY_SPM_NORMAL = 1, YY_SPM_UNKNOWN = 2, YY_SPM_CONTROL = 3,
    YY_SPM_USER_DEFINED = 4, YY_SPM_BYTE = 6, YY_SPM_UNUSED = 5,
};

// Loads a serialized model. On failure returns YY_SPM_ERROR and writes a NUL-terminated message.
int yy_spm_load(const char *path, yy_spm **out, char *err, size_t err_cap);
void yy_spm_free(yy_spm *h);

int yy_spm_piece_size(const yy_spm *h);
int yy_spm_unk_id(const yy_spm *h);
int yy_spm_bos_id(const yy_spm *h);
int yy_spm_eos_id(const yy_spm *h);
int yy_spm_pad_id(const yy_spm *h);
// 1 when the normalizer adds a dummy "▁" prefix to every encoded text.
int yy_spm_add_dummy_prefix(const yy_spm *h);
int yy_spm_piece_type(const yy_spm *h, int id);

// Encodes UTF-8 text to ids; *ids is malloc'd (free with yy_spm_free_buffer).
int yy_spm_encode(const yy_spm *h, const char *text, size_t len,
                  int32_t **ids, size_t *n, char *err, size_t err_cap);
// Decodes ids to UTF-8 (sentencepiece's DecodeIds); *text is malloc'd, not NUL-terminated.
int yy_spm_decode(const yy_spm *h, const int32_t *ids, size_t n,
                  char **text, size_t *len, char *err, size_t err_cap);
// Piece string of an id; *piece is malloc'd. Out-of-range ids are an error.
int yy_spm_id_to_piece(const yy_spm *h, int id, char **piece, size_t *len);
// Id of a piece, or the unknown id when absent.
int yy_spm_piece_to_id(const yy_spm *h, const char *piece, size_t len);

void yy_spm_free_buffer(void *p);

#ifdef __cplusplus
}
#endif
#endif
