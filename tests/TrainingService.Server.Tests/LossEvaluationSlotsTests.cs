using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TrainingService.Server.Configuration;
using TrainingService.Server.Losses;

namespace TrainingService.Server.Tests;

/// <summary>When a large evaluation's memory is handed back: after the last one out, at most once an interval, never forgotten.</summary>
public sealed class LossEvaluationSlotsTests
{
    private static LossEvaluationSlots Slots(TimeSpan interval) =>
        new(Options.Create(new LossApiOptions { MaxConcurrentEvaluations = 2 }), NullLogger<LossEvaluationSlots>.Instance)
        {
            CompactionInterval = interval,
        };

    private static void Evaluate(LossEvaluationSlots slots, bool large)
    {
        using var slot = slots.TryTake()!;
        slot.Large = large;
    }

    [Fact]
    public void Only_the_last_evaluation_out_after_a_large_one_compacts()
    {
        using var slots = Slots(TimeSpan.Zero);
        var first = slots.TryTake()!;
        first.Large = true;
        var second = slots.TryTake()!;

        first.Dispose();
        Assert.Equal(0, slots.Compactions); // another evaluation still holds memory
        second.Dispose();
        Assert.Equal(1, slots.Compactions);

        Evaluate(slots, large: false);
        Assert.Equal(1, slots.Compactions); // small evaluations leave the heap alone
    }

    [Fact]
    public async Task A_large_evaluation_too_soon_after_a_compaction_is_compacted_when_the_interval_ends_without_another_request()
    {
        using var slots = Slots(TimeSpan.FromMilliseconds(300));
        Evaluate(slots, large: true);
        Assert.Equal(1, slots.Compactions);

        Evaluate(slots, large: true);
        Evaluate(slots, large: true);
        Assert.Equal(1, slots.Compactions); // rate-limited: a client cannot pause the process at will

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (slots.Compactions < 2 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }
        Assert.Equal(2, slots.Compactions); // one deferred compaction for both, with no further request
        await Task.Delay(600);
        Assert.Equal(2, slots.Compactions);
    }
}
