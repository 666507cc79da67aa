/* optim.c - parameter updates in C, one call for all parameters.
 *
 * The formulas and their order of operations are torch.optim's single-tensor
 * ones, so that a model trained here follows torch's to rounding. */
#include <math.h>

#include "node.h"

void cg_sgd_step(const cg_ref *params, size_t n, double lr, double momentum,
                 double *buf, int first_step)
{
    for (size_t i = 0; i < n; i++) {
        cg_node *p = cg__node(params[i]);
        double d = p->grad;
        if (momentum != 0.0) {
            buf[i] = first_step ? d : buf[i] * momentum + d;
            d = buf[i];
        }
        p->data += -lr * d;
        p->flags |= CG_F_DATA_FLOAT; /* p.data -= lr * p.grad gives a float */
    }
}

void cg_adam_step(const cg_ref *params, size_t n, double lr, double beta1, double beta2,
                  double eps, double weight_decay, long step, double *m, double *v)
{
    double bias_correction1 = 1.0 - pow(beta1, (double)step);
    double bias_correction2 = 1.0 - pow(beta2, (double)step);
    double step_size = lr / bias_correction1;
    double bias_correction2_sqrt = sqrt(bias_correction2);
    double w = 1.0 - beta1; /* torch's lerp weight */
    for (size_t i = 0; i < n; i++) {
        cg_node *p = cg__node(params[i]);
        double g = p->grad;
        if (weight_decay != 0.0)
            g = g + weight_decay * p->data;
        m[i] = w < 0.5 ? m[i] + w * (g - m[i]) : g - (g - m[i]) * (1.0 - w);
        v[i] = v[i] * beta2 + (1.0 - beta2) * (g * g);
        double denom = sqrt(v[i]) / bias_correction2_sqrt + eps;
        p->data += -step_size * (m[i] / denom);
        p->flags |= CG_F_DATA_FLOAT;
    }
}
