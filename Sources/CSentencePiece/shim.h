// Link-only: libsentencepiece's C++ API is reached through CSentencePieceShim.
#ifndef YANYI_CSENTENCEPIECE_SHIM_H
#define YANYI_CSENTENCEPIECE_SHIM_H
#endif
