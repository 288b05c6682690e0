// LogSoftmax over any axis, for accelc's hls4ml extension (accelc.hls.extensions.logsoftmax).
//
//   y_i = (x_i - max(x)) - log(sum_j exp(x_j - max(x)))
//
// Subtracting the max first makes every exp() argument <= 0, so each term lies in (0, 1], the largest
// term is exactly 1, and the sum lies in [1, n_slice]: exp() cannot overflow and log() never sees 0.
//
// The exp/log are computed in float rather than with hls4ml's fixed-point lookup tables: the vectors
// are small (a classifier's logits), a table-based log would need its own range/precision tuning,
// and float keeps the result exact to well below the output's LSB. <cmath>'s std::exp/std::log on
// float are what g++ uses for C simulation; Vitis HLS maps the same calls onto its hls_math
// implementations when synthesizing, so the one source serves both.
//
// The result is written into the layer's output type res_T: it needs enough integer bits for
// log-probabilities (the Python layer defaults to ap_fixed<16,6,AP_RND,AP_SAT>, i.e. >= -32, with
// saturation so a very unlikely class clips at the minimum instead of wrapping to a positive value).
#ifndef NNET_LOGSOFTMAX_H_
#define NNET_LOGSOFTMAX_H_

#include "hls_stream.h"
#include "nnet_common.h"
#include <cmath>

namespace nnet {

struct logsoftmax_config {
    static const unsigned n_in = 10;    // total number of elements of the (flattened) tensor
    static const unsigned n_slice = 10; // length of the axis over which LogSoftmax normalizes
    static const unsigned n_inner = 1;  // product of the axes after it: the stride between a slice's elements
    static const unsigned io_type = io_parallel;
    static const unsigned reuse_factor = 1;
};

// One slice, all in float: xf holds the inputs, yf receives the log-probabilities.
template <unsigned N> void logsoftmax_float(const float xf[N], float yf[N]) {
    #pragma HLS INLINE
    float x_max = xf[0];
LogSoftmaxMax:
    for (unsigned j = 1; j < N; j++) {
        #pragma HLS UNROLL
        x_max = xf[j] > x_max ? xf[j] : x_max;
    }

    float exp_sum = 0.f;
LogSoftmaxSum:
    for (unsigned j = 0; j < N; j++) {
        #pragma HLS UNROLL
        exp_sum += std::exp(xf[j] - x_max);
    }
    const float log_sum = std::log(exp_sum);

LogSoftmaxOut:
    for (unsigned j = 0; j < N; j++) {
        #pragma HLS UNROLL
        // (x - max) first: both are exact in float for fixed-point inputs, so rounding enters only once.
        yf[j] = (xf[j] - x_max) - log_sum;
    }
}

// io_parallel: the flattened (row-major) tensor holds n_in / (n_slice * n_inner) blocks; block i holds n_inner
// slices, slice k made of the elements i * n_slice * n_inner + j * n_inner + k (as hls4ml's softmax_multidim).
template <class data_T, class res_T, typename CONFIG_T>
void logsoftmax(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in]) {
    #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
    float xf[CONFIG_T::n_slice];
    float yf[CONFIG_T::n_slice];
    #pragma HLS ARRAY_PARTITION variable = xf complete
    #pragma HLS ARRAY_PARTITION variable = yf complete
    constexpr unsigned block = CONFIG_T::n_slice * CONFIG_T::n_inner;

LogSoftmaxBlocks:
    for (unsigned i = 0; i < CONFIG_T::n_in / block; i++) {
    LogSoftmaxSlices:
        for (unsigned k = 0; k < CONFIG_T::n_inner; k++) {
        LogSoftmaxIn:
            for (unsigned j = 0; j < CONFIG_T::n_slice; j++) {
                #pragma HLS UNROLL
                xf[j] = static_cast<float>(data[i * block + j * CONFIG_T::n_inner + k]);
            }
            logsoftmax_float<CONFIG_T::n_slice>(xf, yf);
        LogSoftmaxWrite:
            for (unsigned j = 0; j < CONFIG_T::n_slice; j++) {
                #pragma HLS UNROLL
                res[i * block + j * CONFIG_T::n_inner + k] = static_cast<res_T>(yf[j]);
            }
        }
    }
}

// io_stream: hls4ml packs the last axis into one stream word (like its softmax stream templates),
// so each word is one slice: only n_inner == 1 is lowered (accelc's support check refuses the rest).
template <class data_T, class res_T, typename CONFIG_T>
void logsoftmax(hls::stream<data_T> &data, hls::stream<res_T> &res) {
    static_assert(CONFIG_T::n_inner == 1, "LogSoftmax io_stream normalizes the last axis only");
    static_assert(data_T::size == CONFIG_T::n_slice, "LogSoftmax io_stream expects one slice per stream word");
    static_assert(res_T::size == CONFIG_T::n_slice, "LogSoftmax io_stream expects one slice per stream word");
    float xf[CONFIG_T::n_slice];
    float yf[CONFIG_T::n_slice];
    #pragma HLS ARRAY_PARTITION variable = xf complete
    #pragma HLS ARRAY_PARTITION variable = yf complete

LogSoftmaxWords:
    for (unsigned i = 0; i < CONFIG_T::n_in / CONFIG_T::n_slice; i++) {
        #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
        data_T in_pack = data.read();
    LogSoftmaxUnpack:
        for (unsigned j = 0; j < CONFIG_T::n_slice; j++) {
            #pragma HLS UNROLL
            xf[j] = static_cast<float>(in_pack[j]);
        }
        logsoftmax_float<CONFIG_T::n_slice>(xf, yf);

        res_T out_pack;
        PRAGMA_DATA_PACK(out_pack)
    LogSoftmaxPack:
        for (unsigned j = 0; j < CONFIG_T::n_slice; j++) {
            #pragma HLS UNROLL
            out_pack[j] = static_cast<typename res_T::value_type>(yf[j]);
        }
        res.write(out_pack);
    }
}

} // namespace nnet

#endif
