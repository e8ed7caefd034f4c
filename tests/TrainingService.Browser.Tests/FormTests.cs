using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace TrainingService.Browser.Tests;

/// <summary>The upload and submit forms: keyboard use, labels, and the API's problems shown where they belong.</summary>
[Collection(BrowserTests.Name)]
public sealed class FormTests(BrowserFixture fixture)
{
    private static FilePayload Csv(string name, string text) => new() { Name = name, MimeType = "text/csv", Buffer = Encoding.UTF8.GetBytes(text) };

    /// <summary>Presses Tab until the element with <paramref name="id"/> has the focus (at most <paramref name="limit"/> times).</summary>
    private static async Task TabToAsync(IPage page, string id, int limit = 80)
    {
        for (int i = 0; i < limit; i++)
        {
            if (await page.EvaluateAsync<string?>("document.activeElement?.id") == id)
            {
                return;
            }
            await page.Keyboard.PressAsync("Tab");
        }
        Assert.Fail($"#{id} never took the focus in {limit} presses of Tab");
    }

    [Fact]
    public async Task A_csv_is_uploaded_and_a_job_submitted_with_the_keyboard_alone()
    {
        await using var dashboard = await fixture.NewPageAsync();
        await dashboard.RunAsync(async page =>
        {
            // Listening from the start lets Playwright switch on file-chooser interception before the key opens one: armed
            // only around the key press, it lost the race once under load and chromium's own (headless) dialog took the press.
            var opened = new TaskCompletionSource<IFileChooser>(TaskCreationOptions.RunContinuationsAsynchronously);
            page.FileChooser += (_, chooser) => opened.TrySetResult(chooser);
            await TabToAsync(page, "new-job-open");
            await page.Keyboard.PressAsync("Enter");
            await Expect(page.Locator("#upload-file")).ToBeFocusedAsync(); // opening the panel moves the focus to the file picker
            await page.Keyboard.PressAsync("Space");
            var chooser = await opened.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await chooser.SetFilesAsync(Csv("keyboard.csv", Penguins.Generate(240, seed: 31).Csv));
            await Expect(page.Locator("#upload-status")).ToContainTextAsync("keyboard.csv");
            await Expect(page.Locator("#schema tbody tr")).ToHaveCountAsync(7);

            // The target list starts at the last usable column (sex); species is the first option.
            await TabToAsync(page, "f-target");
            await page.Keyboard.PressAsync("Home");
            await Expect(page.Locator("#f-target")).ToHaveValueAsync("species");
            await TabToAsync(page, "f-epochs");
            await page.Keyboard.PressAsync("Control+A");
            await page.Keyboard.TypeAsync("2");
            await TabToAsync(page, "submit-job");
            await page.Keyboard.PressAsync("Enter");

            await Expect(page.Locator("#new-job")).ToBeHiddenAsync();
            await Expect(page.Locator("#job-progress")).ToHaveTextAsync("epoch 2 of 2", new() { Timeout = 60_000 });
            string id = (await page.Locator("#job-title .job-id").InnerTextAsync()).Trim();
            var job = await fixture.Service.Client.GetJsonAsync($"/api/jobs/{id}");
            Assert.Equal("species", (string?)job["spec"]!["target"]);
            Assert.Equal("cross_entropy", (string?)job["spec"]!["loss"]);
        });
    }

    [Fact]
    public async Task A_csv_dropped_on_the_page_is_uploaded_with_its_progress_shown()
    {
        var penguins = Penguins.Generate(500, seed: 35);
        await using var dashboard = await fixture.NewPageAsync();
        await dashboard.RunAsync(async page =>
        {
            await page.GetByRole(AriaRole.Button, new() { Name = "New job" }).ClickAsync();
            // What a drag from the desktop delivers: a drop event whose DataTransfer holds the file.
            await page.Locator("#drop-zone").EvaluateAsync("""
                (zone, text) => {
                  const transfer = new DataTransfer();
                  transfer.items.add(new File([text], 'dropped.csv', { type: 'text/csv' }));
                  zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true, cancelable: true }));
                  zone.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
                }
                """, penguins.Csv);

            await Expect(page.Locator("#upload-status")).ToContainTextAsync("Stored dropped.csv");
            await Expect(page.Locator("#upload-progress")).ToBeVisibleAsync();
            await Expect(page.Locator("#upload-progress")).ToHaveJSPropertyAsync("value", 100);
            await Expect(page.Locator("#dataset-title")).ToContainTextAsync($"dropped: {penguins.Rows} rows");
            await Expect(page.Locator("#dataset-select")).ToHaveValueAsync(new Regex("^[0-9a-f-]{36}$"));
        });
    }

    [Fact]
    public async Task Every_input_select_and_textarea_on_the_page_has_an_accessible_name()
    {
        string dataset = await fixture.Service.Client.UploadAsync(Penguins.Generate(200, seed: 32).Csv, "labels-penguins");
        string job = await fixture.Service.Client.SubmitAsync(new { datasetId = dataset, target = "species", loss = "cross_entropy", epochs = 2 });
        await fixture.Service.Client.WaitForEndAsync(job, TimeSpan.FromSeconds(60));
        await using var dashboard = await fixture.NewPageAsync($"&job={job}");
        await dashboard.RunAsync(async page =>
        {
            // Everything that can show a field: the predict panel of a finished job, and the form with a combined loss,
            // per-class weights, an MLP, every schedule's and early stopping's fields.
            await page.GetByText("Predict with this model").ClickAsync();
            await Expect(page.Locator("#predict-fields select, #predict-fields input")).ToHaveCountAsync(6);
            await page.GetByRole(AriaRole.Button, new() { Name = "New job" }).ClickAsync();
            await page.GetByLabel("use a dataset uploaded before").SelectOptionAsync(dataset);
            await page.GetByLabel("Target column").SelectOptionAsync("species");
            await page.GetByRole(AriaRole.Button, new() { Name = "Add a loss term" }).ClickAsync();
            await page.GetByLabel("Class weights").SelectOptionAsync("custom");
            await page.GetByLabel("Model", new() { Exact = true }).SelectOptionAsync("mlp");
            await page.GetByLabel("Stop early").CheckAsync();
            await page.GetByText("Show as JSON").ClickAsync();
            await Expect(page.Locator("#class-weight-values input")).ToHaveCountAsync(3);

            Assert.True(await ExpectVisibleFieldsNamedAsync(page) > 50);
            await page.GetByRole(AriaRole.Button, new() { Name = "Compare", Exact = true }).ClickAsync();
            Assert.True(await ExpectVisibleFieldsNamedAsync(page) > 5);
        });
    }

    /// <summary>
    /// Checks that each visible field has an accessible name; returns how many there are. Visible ones only: a hidden
    /// field has no place in the accessibility tree, so no name to check.
    /// </summary>
    private static async Task<int> ExpectVisibleFieldsNamedAsync(IPage page)
    {
        var fields = page.Locator("input:not([type=hidden]):visible, select:visible, textarea:visible");
        int count = await fields.CountAsync();
        for (int i = 0; i < count; i++)
        {
            await Expect(fields.Nth(i)).ToHaveAccessibleNameAsync(new Regex(@"\S"));
        }
        return count;
    }

    [Fact]
    public async Task Signing_out_leaves_no_dataset_schema_rows_or_form_in_the_page()
    {
        string dataset = await fixture.Service.Client.UploadAsync(Penguins.Generate(60, seed: 36).Csv, "signout-penguins");
        await using var dashboard = await fixture.NewPageAsync();
        await dashboard.RunAsync(async page =>
        {
            await page.GetByRole(AriaRole.Button, new() { Name = "New job" }).ClickAsync();
            await page.GetByLabel("use a dataset uploaded before").SelectOptionAsync(dataset);
            await Expect(page.Locator("#preview tbody tr")).ToHaveCountAsync(10);

            await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();

            await Expect(page.GetByLabel("API key")).ToBeFocusedAsync();
            Assert.Equal(1, await ExpectVisibleFieldsNamedAsync(page)); // the sign-in form's one field has its name too
            foreach (string table in new[] { "#schema", "#preview", "#f-target", "#loss-terms", "#dataset-select" })
            {
                await Expect(page.Locator($"{table} > *")).ToHaveCountAsync(0);
            }
            await Expect(page.Locator("#spec-json")).ToBeEmptyAsync();
        });
    }

    [Fact]
    public async Task A_problem_from_the_api_is_shown_at_the_field_it_names()
    {
        string dataset = await fixture.Service.Client.UploadAsync(Penguins.Generate(120, seed: 33).Csv, "problem-penguins");
        await using var dashboard = await fixture.NewPageAsync();
        dashboard.ExpectStatus(400, "/api/jobs");
        await dashboard.RunAsync(async page =>
        {
            await page.GetByRole(AriaRole.Button, new() { Name = "New job" }).ClickAsync();
            await page.GetByLabel("use a dataset uploaded before").SelectOptionAsync(dataset);
            await page.GetByLabel("Model", new() { Exact = true }).SelectOptionAsync("mlp");
            await page.GetByLabel("Hidden layers").FillAsync("16, 0");
            await page.GetByRole(AriaRole.Button, new() { Name = "Submit job" }).ClickAsync();

            var hidden = page.GetByLabel("Hidden layers");
            await Expect(hidden).ToHaveAttributeAsync("aria-invalid", "true");
            await Expect(hidden).ToBeFocusedAsync();
            await Expect(hidden).ToHaveAccessibleDescriptionAsync(new Regex("job.invalid_hidden_layers"));
            await Expect(page.Locator(".field-problem")).ToHaveCountAsync(1);

            // Fixed and sent again, the problem goes away and the job is accepted.
            await hidden.FillAsync("16");
            await page.GetByRole(AriaRole.Button, new() { Name = "Submit job" }).ClickAsync();
            await Expect(page.Locator("#new-job")).ToBeHiddenAsync();
            await Expect(page.Locator(".field-problem")).ToHaveCountAsync(0);
        });
    }

    [Fact]
    public async Task A_refused_upload_shows_its_problem_beside_the_files_lines_with_the_bad_line_marked()
    {
        var lines = Penguins.Generate(8, seed: 34).Csv.Split('\n').ToList();
        lines[5] += ",surplus"; // line 6 of the file has a field too many
        await using var dashboard = await fixture.NewPageAsync();
        dashboard.ExpectStatus(400, "/api/datasets");
        await dashboard.RunAsync(async page =>
        {
            await page.GetByRole(AriaRole.Button, new() { Name = "New job" }).ClickAsync();
            await page.Locator("#upload-file").SetInputFilesAsync(Csv("ragged.csv", string.Join('\n', lines)));

            await Expect(page.Locator("#upload-problem")).ToBeVisibleAsync();
            await Expect(page.Locator("#upload-problem-text")).ToContainTextAsync("line 6");
            await Expect(page.Locator("#upload-problem-lines li.bad-line")).ToHaveTextAsync(lines[5]);
            await Expect(page.Locator("#upload-problem-lines li")).ToHaveCountAsync(lines.Count(l => l.Length > 0) + 1);
            await Expect(page.Locator("#dataset-view")).ToBeHiddenAsync();
        });
    }
}
