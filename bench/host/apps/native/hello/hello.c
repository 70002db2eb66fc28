/* The benchmark's native HTTP function: 200, text/plain, "hello".
 * bench/host/run.sh builds it: cc -shared -fPIC -O2 -I<repo>/include -o hello.so hello.c */
#include <nimbus/function.h>

int run(struct nimbus_ctx *ctx)
{
    nimbus_set_status(ctx, 200);
    nimbus_set_header(ctx, "Content-Type", "text/plain");
    nimbus_write(ctx, "hello", 5);
    return 0;
}
