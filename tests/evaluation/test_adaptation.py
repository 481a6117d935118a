"""The adaptation curve: query results after 0..K steps, computed independently of the algorithm's loop."""

import copy

import torch
import torch.nn.functional as F

from lit_meta.algorithms import Reptile, build_algorithm
from lit_meta.evaluation import adaptation_curves
from lit_meta.nn import MLP
from lit_meta.tasks import TaskBatch


def test_regression_curve_scores_the_query_set_after_each_step(sine_tasks):
    torch.manual_seed(0)
    reptile = Reptile(MLP(1, 1, [8], "tanh"), F.mse_loss, inner_lr=0.05, inner_steps=1)
    curve = adaptation_curves(reptile, [sine_tasks], steps=4)
    assert curve.loss.shape == (3, 5) and curve.accuracy is None
    for i in range(3):
        model = copy.deepcopy(reptile.learner)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        for step in range(5):
            with torch.no_grad():
                expected = F.mse_loss(model(sine_tasks.query_x[i]), sine_tasks.query_y[i])
            torch.testing.assert_close(curve.loss[i, step], expected, atol=1e-6, rtol=1e-5)
            optimizer.zero_grad()
            F.mse_loss(model(sine_tasks.support_x[i]), sine_tasks.support_y[i]).backward()
            optimizer.step()


def test_classification_curve_reports_accuracy():
    generator = torch.Generator().manual_seed(0)
    tasks = TaskBatch(
        support_x=torch.randn(2, 6, 4, generator=generator),
        support_y=torch.randint(0, 3, (2, 6), generator=generator),
        query_x=torch.randn(2, 9, 4, generator=generator),
        query_y=torch.randint(0, 3, (2, 9), generator=generator),
    )
    torch.manual_seed(1)
    maml = build_algorithm("maml", MLP(4, 3, [16]), F.cross_entropy, inner_lr=0.5, inner_steps=1)
    curve = adaptation_curves(maml, [tasks], steps=3)
    assert curve.accuracy.shape == (2, 4)
    with torch.no_grad():
        logits = torch.stack([maml.learner(query_x) for query_x in tasks.query_x])
        initial = (logits.argmax(-1) == tasks.query_y).float().mean(-1)
    torch.testing.assert_close(curve.accuracy[:, 0], initial)
    torch.testing.assert_close(curve.accuracy * 9, (curve.accuracy * 9).round())  # multiples of 1/9
