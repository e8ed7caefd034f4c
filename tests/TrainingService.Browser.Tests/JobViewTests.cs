using System.Text.Json.Nodes;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace TrainingService.Browser.Tests;

/// <summary>Finished jobs on the page: compared, drawn on a log scale, retried, downloaded, and used to predict.</summary>
[Collection(BrowserTests.Name)]
public sealed class JobViewTests(BrowserFixture fixture)
{
    /// <summary>A small linear classifier on penguins that ends within seconds.</summary>
    private async Task<string> FinishedJobAsync(string datasetId, int epochs, double learningRate = 0.05)
    {
        string id = await fixture.Service.Client.SubmitAsync(new
        {
            datasetId, target = "species", loss = "cross_entropy", epochs, batchSize = 16, seed = 3,
            optimizer = new { name = "adam", learningRate }, validation = new { fraction = 0.25 },
        });
        var job = await fixture.Service.Client.WaitForEndAsync(id, TimeSpan.FromSeconds(90));
        Assert.Equal("succeeded", (string?)job["status"]);
        return id;
    }

    [Fact]
    public async Task Two_jobs_ticked_in_the_list_are_compared_and_the_loss_chart_switches_to_log_scale()
    {
        string dataset = await fixture.Service.Client.UploadAsync(Penguins.Generate(300, seed: 21).Csv, "compare-penguins");
        string first = await FinishedJobAsync(dataset, 4), second = await FinishedJobAsync(dataset, 6, learningRate: 0.01);
        await using var dashboard = await fixture.NewPageAsync();
        await dashboard.RunAsync(async page =>
        {
            await page.Locator($"#job-rows tr[data-id='{first}'] input[data-compare]").CheckAsync();
            await page.Locator($"#job-rows tr[data-id='{second}'] input[data-compare]").CheckAsync();
            await page.GetByRole(AriaRole.Button, new() { Name = "Compare", Exact = true }).ClickAsync();
            await Expect(page.Locator("#compare-note")).ToContainTextAsync("valLoss of 2 job(s)");
            await Expect(page.Locator("#chart-compare .u-legend")).ToContainTextAsync(first[^8..]);
            await Expect(page.Locator("#chart-compare .u-legend")).ToContainTextAsync(second[^8..]);

            await page.Locator($"#job-rows tr[data-id='{second}'] .job-id").ClickAsync();
            await Expect(page.Locator("#job-progress")).ToHaveTextAsync("epoch 6 of 6");
            await page.Locator("#job-view").GetByLabel("log scale").CheckAsync();
            await Expect(page.Locator("#job-view").GetByLabel("log scale")).ToBeCheckedAsync();
            await Expect(page.Locator("#chart-loss .u-legend")).ToContainTextAsync("validation loss");
            await Expect(page.Locator("#chart-loss canvas")).ToHaveCountAsync(1);
        });
    }

    [Fact]
    public async Task A_finished_job_is_retried_its_model_downloaded_and_used_to_predict_from_the_form_and_from_pasted_rows()
    {
        string dataset = await fixture.Service.Client.UploadAsync(Penguins.Generate(300, seed: 22).Csv, "predict-penguins");
        string job = await FinishedJobAsync(dataset, 5);
        await using var dashboard = await fixture.NewPageAsync($"&job={job}");
        await dashboard.RunAsync(async page =>
        {
            await Expect(page.Locator("#job-status")).ToContainTextAsync("succeeded");

            var download = await page.RunAndWaitForDownloadAsync(() => page.GetByRole(AriaRole.Button, new() { Name = "Model (JSON)" }).ClickAsync());
            var model = JsonNode.Parse(await File.ReadAllTextAsync((await download.PathAsync())!))!;
            Assert.Equal(job, (string?)model["jobId"]);
            Assert.Equal(["Adelie", "Chinstrap", "Gentoo"], model["labels"]!.AsArray().Select(l => (string?)l));

            await page.GetByText("Predict with this model").ClickAsync();
            // A Gentoo: long flippers, heavy, shallow bill, from Biscoe.
            await page.GetByLabel("island", new() { Exact = true }).SelectOptionAsync("Biscoe");
            await page.GetByLabel("bill_length_mm", new() { Exact = true }).FillAsync("47.5");
            await page.GetByLabel("bill_depth_mm", new() { Exact = true }).FillAsync("15");
            await page.GetByLabel("flipper_length_mm", new() { Exact = true }).FillAsync("217");
            await page.GetByLabel("body_mass_g", new() { Exact = true }).FillAsync("5076");
            await page.GetByLabel("sex", new() { Exact = true }).SelectOptionAsync("female");
            await page.GetByRole(AriaRole.Button, new() { Name = "Predict", Exact = true }).ClickAsync();
            await Expect(page.Locator("#predict-results td.prediction")).ToHaveTextAsync(["Gentoo"]);

            // The same penguin and an Adelie, pasted with a header in another column order; a missing sex is imputed.
            await page.GetByLabel("Or paste CSV rows").FillAsync(
                "sex,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g\nfemale,Biscoe,47.5,15,217,5076\n,Torgersen,38.8,18.3,190,3700");
            await page.GetByRole(AriaRole.Button, new() { Name = "Predict pasted rows" }).ClickAsync();
            await Expect(page.Locator("#predict-results td.prediction")).ToHaveTextAsync(["Gentoo", "Adelie"]);
            await Expect(page.Locator("#predict-results tbody tr").Nth(1)).ToContainTextAsync("sex: missing, imputed");

            await page.GetByRole(AriaRole.Button, new() { Name = "Retry" }).ClickAsync();
            await Expect(page.Locator("#job-title .job-id")).Not.ToHaveTextAsync(job);
            string retried = (await page.Locator("#job-title .job-id").InnerTextAsync()).Trim();
            Assert.Equal(job, (string?)(await fixture.Service.Client.GetJsonAsync($"/api/jobs/{retried}"))["retryOf"]);
            await Expect(page.Locator("#job-progress")).ToHaveTextAsync("epoch 5 of 5", new() { Timeout = 60_000 });
        });
    }
}
