/* define.c - define a network with the library, print it as PyTorch does,
 * infer its shapes and run it. The README's library example. */
#include <stdio.h>

#include <cnnkit/cnnkit.h>

int main(void) {
    cnn_model *m = cnn_model_new("Net");                /* class Net(nn.Module) */
    int seq = cnn_model_add_container(m, 0, "features", "Sequential");
    cnn_layer conv = cnn_conv2d(1, 6, 5);               /* nn.Conv2d(1, 6, kernel_size=5, */
    conv.padding[0] = conv.padding[1] = 2;              /*           padding=2)           */
    cnn_layer act = cnn_relu();
    cnn_layer pool = cnn_maxpool2d(2);                  /* stride defaults to the kernel */
    cnn_layer flat = cnn_flatten();
    cnn_layer fc = cnn_linear(6 * 14 * 14, 10);
    if (cnn_model_add_layer(m, seq, "0", &conv) < 0 || cnn_model_add_layer(m, seq, "1", &act) < 0 ||
        cnn_model_add_layer(m, seq, "2", &pool) < 0 || cnn_model_add_layer(m, seq, "3", &flat) < 0 ||
        cnn_model_add_layer(m, seq, "4", &fc) < 0 || cnn_model_finalize(m) != CNN_OK ||
        cnn_model_init(m, CNN_INIT_DEFAULT, 42) != CNN_OK) { /* or cnn_model_load(m, path) */
        fprintf(stderr, "%s\n", cnn_model_error(m));
        cnn_model_free(m);
        return 1;
    }
    char text[1024];
    cnn_model_repr(m, text, sizeof text);
    fputs(text, stdout);

    cnn_shape in = cnn_shape_make(4, (int64_t[]){1, 1, 28, 28});
    cnn_tensor x, y;
    if (cnn_tensor_alloc(&x, &in) != CNN_OK) return 1;  /* zeros: fill x.data with pixels */
    if (cnn_model_forward(m, &x, &y) != CNN_OK) {
        fprintf(stderr, "%s\n", cnn_model_error(m));
        return 1;
    }
    char shape[64];
    cnn_shape_format(shape, sizeof shape, &y.shape);
    printf("output %s, first score %.4f\n", shape, y.data[0]);
    cnn_tensor_free(&x);
    cnn_tensor_free(&y);
    cnn_model_free(m);
    return 0;
}
