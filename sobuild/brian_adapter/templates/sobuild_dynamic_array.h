// Brian2's DynamicArray1D/2D for sobuild kernels.
#ifndef SOBUILD_DYNAMIC_ARRAY_H
#define SOBUILD_DYNAMIC_ARRAY_H
// g++ 12 reports a spurious -Wstringop-overflow inside DynamicArray1D::resize.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
#include "brianlib/dynamic_array.h"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif
