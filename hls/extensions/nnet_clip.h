// Clip (clamp to [min, max], either bound optional) for accelc's hls4ml extension (accelc.hls.extensions.clip).
//
// The bounds are compile-time constants of the config; they are cast to the input type once, so the
// comparisons are plain fixed-point comparisons (no float logic is synthesized) and a bound that the
// input type cannot represent rounds to its grid, the most a fixed-point clamp can express.
#ifndef NNET_CLIP_H_
#define NNET_CLIP_H_

#include "hls_stream.h"
#include "nnet_common.h"

namespace nnet {

struct clip_config {
    static const unsigned n_in = 10;
    static const bool has_min = false;
    static const bool has_max = false;
    static constexpr double min = 0.;
    static constexpr double max = 0.;
    static const unsigned io_type = io_parallel;
    static const unsigned reuse_factor = 1;
};

template <class data_T, class res_T, typename CONFIG_T> inline res_T clip_one(data_T x) {
    #pragma HLS INLINE
    const data_T lo = CONFIG_T::min;
    const data_T hi = CONFIG_T::max;
    if (CONFIG_T::has_min && x < lo)
        return lo;
    if (CONFIG_T::has_max && x > hi)
        return hi;
    return x;
}

// io_parallel: one flat array.
template <class data_T, class res_T, typename CONFIG_T> void clip(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in]) {
    #pragma HLS PIPELINE
ClipLoop:
    for (unsigned i = 0; i < CONFIG_T::n_in; i++) {
        #pragma HLS UNROLL
        res[i] = clip_one<data_T, res_T, CONFIG_T>(data[i]);
    }
}

// io_stream: packed words of data_T::size elements, as hls4ml's stream activations.
template <class data_T, class res_T, typename CONFIG_T> void clip(hls::stream<data_T> &data, hls::stream<res_T> &res) {
ClipWords:
    for (unsigned i = 0; i < CONFIG_T::n_in / data_T::size; i++) {
        #pragma HLS PIPELINE
        data_T in_pack = data.read();
        res_T out_pack;
        PRAGMA_DATA_PACK(out_pack)
    ClipPack:
        for (unsigned j = 0; j < res_T::size; j++) {
            #pragma HLS UNROLL
            out_pack[j] = clip_one<typename data_T::value_type, typename res_T::value_type, CONFIG_T>(in_pack[j]);
        }
        res.write(out_pack);
    }
}

} // namespace nnet

#endif
