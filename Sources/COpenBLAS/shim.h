// Why this shim exists: Debian installs cblas.h under the multiarch include folder
// (chosen by update-alternatives); one include here keeps Swift code unaware of that.
#ifndef YANYI_COPENBLAS_SHIM_H
#define YANYI_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
