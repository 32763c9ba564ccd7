/* lea backend on the host board: the DSPLib calls are served by the project's software model
 * (firmware/dsplib/model/), compiled into the firmware here (CMake compiles firmware/kernels/lea/host/). */
#include "../../../dsplib/model/msp_model_lea.c"
#include "../../../dsplib/model/msp_model_rom.c"
#include "../../../dsplib/model/msp_transform.c"
#include "../../../dsplib/model/msp_vector.c"
