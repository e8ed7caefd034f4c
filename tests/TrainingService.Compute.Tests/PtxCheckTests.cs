using ILGPU;
using TrainingService.Compute.Devices;
using TrainingService.Compute.Losses;
using TrainingService.Compute.Models;
using TrainingService.Compute.Optimizers;
using TrainingService.Compute.Tests.Losses;
using TrainingService.Compute.Tests.Training;
using TrainingService.Compute.Training;

namespace TrainingService.Compute.Tests;

/// <summary>
/// The CUDA compile check (<see cref="PtxCheck"/>): real kernels compile for CUDA without a GPU, and a kernel that cannot
/// is named. The tests' shared device (<see cref="TestDevice"/>) also compiles every kernel it loads for CUDA, so every
/// kernel instantiation any test launches is checked.
/// </summary>
public sealed class PtxCheckTests
{
    [Fact]
    public async Task The_kernels_of_a_loss_evaluation_and_a_training_run_compile_for_cuda()
    {
        Evaluate.Flat("huber", [0.5, 2, -1], [0, 2.5, -1]);
        Evaluate.Rows("cross_entropy", [[2, 1, 0], [0, 1, 3]], [0, 2]);
        var spec = TrainingFixtures.Spec(new NetworkLayout(2, [4], 1, Activation.Relu), TrainingFixtures.Loss("mse", TargetLayout.Elementwise, 1),
            new OptimizerSpec(OptimizerKind.Adam, 0.01), epochs: 1, batchSize: 8, OutputKind.Regression, OutputTransform.Identity);
        await TrainingFixtures.TrainAsync(spec, TrainingFixtures.LinearProblem(32));

        using var check = PtxCheck.Create();
        var kernels = TestDevice.Instance.LoadedKernels.ToList();
        foreach (var kernel in kernels)
        {
            check.Compile(kernel);
        }

        Assert.True(kernels.Count >= 5, $"only {kernels.Count} kernels were loaded");
        Assert.Equal(kernels.Count, check.Compiled);
        // The shared device compiled each for CUDA before loading it (other tests may be loading more meanwhile).
        int loaded = TestDevice.Instance.LoadedKernels.Count;
        Assert.True(TestDevice.Instance.PtxCheckedKernels >= loaded, $"{TestDevice.Instance.PtxCheckedKernels} of {loaded} kernels checked");
    }

    [Fact]
    public void A_kernel_that_cannot_compile_for_cuda_is_named()
    {
        using var check = PtxCheck.Create();

        var refused = Assert.Throws<InvalidOperationException>(() => check.Compile(typeof(PtxCheckTests).GetMethod(nameof(AllocatesAnObject),
            System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!));

        Assert.Contains(nameof(AllocatesAnObject), refused.Message);
        Assert.Equal(0, check.Compiled);
    }

    private static void AllocatesAnObject(ArrayView<int> values) => values[0] = new object().GetHashCode();
}
