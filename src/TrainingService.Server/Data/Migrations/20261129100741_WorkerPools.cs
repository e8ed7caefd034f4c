using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace TrainingService.Server.Data.Migrations
{
    /// <inheritdoc />
    public partial class WorkerPools : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "compute_device",
                table: "jobs",
                type: "text",
                nullable: false,
                defaultValue: "any");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "compute_device",
                table: "jobs");
        }
    }
}
