using ILGPU;
using ILGPU.Runtime;
using TrainingService.Compute.Losses;
using static TrainingService.Compute.Tests.Losses.Evaluate;

namespace TrainingService.Compute.Tests.Losses;

/// <summary>
/// The 8-element block kernel (no weights, no side input) against the per-element kernel (forced by all-one
/// weights, which change nothing): the same gradient bit for bit and the same loss up to summation order.
/// </summary>
public sealed class PointwiseBlocksTests
{
    public static TheoryData<string, int> Losses()
    {
        var data = new TheoryData<string, int>();
        string[] names = ["mse", "l1", "huber", "smooth_l1", "log_cosh", "poisson_nll", "gaussian_nll", "bce", "bce_with_logits",
            "hinge", "squared_hinge", "focal", "huber+l1"];
        foreach (string name in names)
        {
            foreach (int n in new[] { 1, 7, 8, 9, 64, 1003 })
            {
                data.Add(name, n);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Losses))]
    public void Blocks_and_elements_agree(string name, int n)
    {
        var random = new Random(n);
        bool probabilities = name == "bce", labels = name is "bce_with_logits" or "hinge" or "squared_hinge" or "focal";
        var x = Enumerable.Range(0, n).Select(_ => (float)(probabilities ? 0.01 + 0.98 * random.NextDouble() : random.NextDouble() * 6 - 3)).ToArray();
        var y = Enumerable.Range(0, n).Select(_ => (float)(labels ? random.Next(2) : name == "poisson_nll" ? random.Next(5)
            : probabilities ? random.NextDouble() : random.NextDouble() * 6 - 3)).ToArray();
        LossTermSpec[] terms = name == "huber+l1" ? [new("huber"), new("l1", Weight: 0.5)] : [new(name)];
        var loss = CombinedLoss.Bind(terms, new LossBinding(TargetLayout.Elementwise, 1, false));

        var blocks = Run(loss, new LossInput(x, y, n, 1));
        var elements = Run(loss, new LossInput(x, y, n, 1, Weights: Enumerable.Repeat(1f, n).ToArray()));

        Assert.Equal(elements.Loss, blocks.Loss, Math.Abs(elements.Loss) * 1e-12);
        Assert.Equal(elements.Gradient, blocks.Gradient);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)] // not on a block boundary: the per-element kernel takes it
    [InlineData(8)]
    public void Views_that_start_inside_the_buffer_give_the_same_result(int offset)
    {
        const int n = 1003;
        var random = new Random(5);
        var x = Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
        var y = Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
        var loss = CombinedLoss.Bind([new LossTermSpec("huber")], new LossBinding(TargetLayout.Elementwise, 1, false));
        var expected = Run(loss, new LossInput(x, y, n, 1));
        var term = loss.Terms[0];
        var device = TestDevice.Instance;
        using var gate = device.Acquire();
        using var predictions = device.Accelerator.Allocate1D<float>(n + offset);
        using var targets = device.Accelerator.Allocate1D<float>(n + offset);
        using var gradient = device.Accelerator.Allocate1D<float>(n + offset);
        using var partials = device.AllocateZeroed<double>(device.MaxGroups);
        predictions.View.SubView(offset, n).CopyFromCPU(x);
        targets.View.SubView(offset, n).CopyFromCPU(y);
        var views = new LossViews
        {
            Predictions = predictions.View.SubView(offset, n),
            Targets = targets.View.SubView(offset, n),
            Weights = ArrayView<float>.Empty,
            Aux = ArrayView<float>.Empty,
            ClassWeights = ArrayView<float>.Empty,
            Gradient = gradient.View.SubView(offset, n),
            PerItem = ArrayView<float>.Empty,
            Partials = partials.View,
        };
        term.Launch(device, views, new LossLaunchArgs { Scale = 1.0 / n, Classes = 1 }, n);
        device.Accelerator.Synchronize();

        Assert.Equal(expected.Loss, partials.GetAsArray1D().Sum() / n, 1e-12);
        Assert.Equal(expected.Gradient, gradient.View.SubView(offset, n).GetAsArray1D());
    }
}
