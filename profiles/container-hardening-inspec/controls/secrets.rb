# Secrets: the same rules as container-hardening's secrets.yml, in InSpec syntax.

control 'ch-sec-01' do
  impact 0.7
  title 'No SSH keys in root\'s home'
  desc 'Private keys in an image are shared with everyone who can pull it (CIS 4.10, SP 800-190 4.1.5).'
  tag nist: %w[IA-5 SC-12], cis: '4.10', severity: 'high'
  if directory('/root/.ssh').exist?
    describe command(ContainerChecks.find_command(%w[/root/.ssh], [], '-type f')) do
      its('stdout') { should be_empty }
      its('exit_status') { should eq 0 }
    end
  else
    describe directory('/root/.ssh') do
      it { should_not exist }
    end
  end
end

control 'ch-sec-02' do
  impact 0.3
  title 'No shell history for root'
  desc 'Build-time shell history often contains tokens and passwords.'
  tag nist: %w[IA-5 SC-28], cis: '4.10', severity: 'low'
  describe file('/root/.ash_history') do
    it { should_not exist }
  end
  describe file('/root/.bash_history') do
    it { should_not exist }
  end
end

control 'ch-sec-03' do
  impact 0.7
  title 'No registry credentials in the image'
  desc 'docker config.json holds registry tokens.'
  tag nist: %w[IA-5 SC-28], cis: '4.10', severity: 'high'
  describe file('/root/.docker/config.json') do
    it { should_not exist }
  end
end

control 'ch-sec-04' do
  impact 0.7
  title 'No cloud credentials in the image'
  desc 'Cloud CLI credential files grant account access to anyone with the image.'
  tag nist: %w[IA-5 SC-28], cis: '4.10', severity: 'high'
  describe file('/root/.aws/credentials') do
    it { should_not exist }
  end
  describe file('/root/.config/gcloud/credentials.db') do
    it { should_not exist }
  end
end

control 'ch-sec-05' do
  impact 0.7
  title 'No kubeconfig in the image'
  desc 'A kubeconfig grants cluster access to anyone with the image.'
  tag nist: %w[IA-5 AC-6], cis: '4.10', severity: 'high'
  describe file('/root/.kube/config') do
    it { should_not exist }
  end
end

control 'ch-sec-06' do
  impact 0.5
  title 'No git credentials in the image'
  desc 'git-credentials stores tokens in clear text.'
  tag nist: %w[IA-5 SC-28], cis: '4.10', severity: 'medium'
  describe file('/root/.git-credentials') do
    it { should_not exist }
  end
end

control 'ch-sec-07' do
  impact 0.5
  title 'The TLS private key directory is private'
  desc 'Service private keys must only be readable by their owner.'
  tag nist: %w[SC-12 AC-3], severity: 'medium'
  if file('/etc/ssl/private').exist?
    describe file('/etc/ssl/private') do
      it { should be_directory }
      it { should be_owned_by 'root' }
      it { should_not be_more_permissive_than('0710') }
    end
  else
    describe file('/etc/ssl/private') do
      it { should_not exist }
    end
  end
end

control 'ch-sec-08' do
  impact 0.5
  title 'Shadow backups are protected'
  desc 'Backup copies of shadow hold the same hashes as the original.'
  tag nist: %w[IA-5 AC-3], severity: 'medium'
  if file('/etc/shadow-').exist?
    describe file('/etc/shadow-') do
      it { should be_owned_by 'root' }
      it { should_not be_more_permissive_than('0640') }
    end
  else
    describe file('/etc/shadow-') do
      it { should_not exist }
    end
  end
end

control 'ch-sec-09' do
  impact 0.5
  title 'No .env file at the filesystem root'
  desc 'Dotenv files copied into images usually carry application secrets.'
  tag nist: %w[IA-5 SC-28], cis: '4.10', severity: 'medium'
  describe file('/.env') do
    it { should_not exist }
  end
end
