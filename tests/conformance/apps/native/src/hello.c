/* The conformance app's "hello" function, alone in hello/hello.so under the
 * default entry point "run" (its function.json names no entryPoint). */
#include <nimbus/function.h>

int run(struct nimbus_ctx *ctx);

int run(struct nimbus_ctx *ctx)
{
    nimbus_set_status(ctx, 200);
    nimbus_set_header(ctx, "Content-Type", "text/plain");
    nimbus_write(ctx, "hello", 5);
    return 0;
}
